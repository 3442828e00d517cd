"""PyTAK (an independent TAK client library) over plain TCP and over TLS with an issued PKCS#12."""

from __future__ import annotations

import asyncio
import configparser
import warnings
from pathlib import Path

import pytest

from tests.support.cot_client import CotClient, sa
from tests.support.server import ServerProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak


def _config(url: str, **extra: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser["test"] = {"COT_URL": url, **extra}
    return parser["test"]


async def _read_until(reader: asyncio.StreamReader, needle: bytes, timeout: float = 10.0) -> bytes:
    buf = b""
    async with asyncio.timeout(timeout):
        while needle not in buf:
            chunk = await reader.read(65536)
            if not chunk:
                break
            buf += chunk
    assert needle in buf, buf[-500:]
    return buf


def _pytak_event(uid: str, callsign: str) -> bytes:
    """An event built by PyTAK itself, with a contact so receivers see a callsign."""
    xml: bytes = pytak.gen_cot(lat=39.2, lon=-120.1, uid=uid, cot_type="a-f-G-U-C", stale=600)
    return xml.replace(b"</event>", f'<detail><contact callsign="{callsign}"/></detail></event>'.encode()) \
        if b"<detail" not in xml else xml


async def test_pytak_over_tcp_sends_and_receives(server: ServerProcess, clients: list[object]) -> None:
    reader, writer = await pytak.protocol_factory(_config(f"tcp://127.0.0.1:{server.ports['cot']}"))
    raw = await CotClient.connect(server.ports["cot"])
    clients.append(raw)
    try:
        writer.write(_pytak_event("pytak-tcp-1", "PYTAK"))
        await writer.drain()
        got = await raw.wait_uid("pytak-tcp-1")
        assert got.type == "a-f-G-U-C"
        await raw.send(sa("raw-1", "RAW"))
        await _read_until(reader, b'uid="raw-1"')
    finally:
        writer.close()


@pytest.fixture
def client_bundle(server: ServerProcess, tmp_path: Path) -> dict[str, Path]:
    from rallypoint.clock import SystemClock
    from rallypoint.security.ca import CertificateAuthority, write_client_bundle

    ca = CertificateAuthority.load_or_create(server.data_dir / "ca", clock=SystemClock())
    issued = ca.issue_client("pytak-user")
    paths = write_client_bundle(issued, tmp_path / "bundle", "atakatak", ca=ca)
    by_suffix = {p.name: p for p in paths}
    return {
        "p12": by_suffix["pytak-user.p12"],
        "ca": ca.ca_path,
    }


async def test_pytak_over_tls_with_issued_pkcs12(
    server: ServerProcess, client_bundle: dict[str, Path], clients: list[object]
) -> None:
    cfg = _config(
        f"tls://127.0.0.1:{server.ports['tls']}",
        PYTAK_TLS_CLIENT_CERT=str(client_bundle["p12"]),
        PYTAK_TLS_CLIENT_PASSWORD="atakatak",
        PYTAK_TLS_CLIENT_CAFILE=str(client_bundle["ca"]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader, writer = await pytak.protocol_factory(cfg)
    raw = await CotClient.connect(server.ports["cot"])
    clients.append(raw)
    try:
        # The server offers TAK Protocol v1 on connect; PyTAK stays on XML, which must keep working.
        writer.write(_pytak_event("pytak-tls-1", "PYTAKTLS"))
        await writer.drain()
        await raw.wait_uid("pytak-tls-1")
        await raw.send(sa("raw-2", "RAW2"))
        await _read_until(reader, b'uid="raw-2"')
    finally:
        writer.close()


async def test_tls_without_client_certificate_is_refused(server: ServerProcess) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(server.data_dir / "ca" / "ca.pem"))
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tls"], ssl=ctx)
        # TLS 1.3 reports a missing client certificate on the first read.
        data = await reader.read(100)
        if not data:
            raise ConnectionError("closed by server")
        writer.close()
