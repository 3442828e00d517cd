"""Client certificates against the real server's TLS listeners: CoT on 8089 and HTTPS on 8443.

Unknown-CA, expired and missing certificates fail the handshake on both ports; a revoked certificate
is refused on both; a valid client is served throughout.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rallypoint.clock import ManualClock, SystemClock
from rallypoint.security.ca import CertificateAuthority
from rallypoint.transport.tls import client_ssl_context
from tests.support.certs import ClientBundle, bundle_context, client_bundle
from tests.support.cot_client import CotClient, sa
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

DAY_MS = 86_400_000


def _https(server: ServerProcess, ctx: ssl.SSLContext, path: str = "/Marti/api/version") -> httpx.Response:
    with httpx.Client(verify=ctx, timeout=10) as http:
        return http.get(f"https://localhost:{server.ports['api']}{path}")


async def _refused_on_cot(server: ServerProcess, ctx: ssl.SSLContext) -> None:
    """The TLS CoT port never lets this client in: the handshake fails or the session closes unused."""
    try:
        client = await CotClient.connect(server.ports["tls"], ssl_context=ctx, wait_registered=False)
    except (ssl.SSLError, ConnectionError):
        return
    try:
        await asyncio.wait_for(client.closed.wait(), timeout=10)
        assert not client.events, "a refused client must not receive the picture"
    finally:
        await client.close()


def _refused_on_https(server: ServerProcess, ctx: ssl.SSLContext) -> None:
    with pytest.raises((ssl.SSLError, httpx.TransportError)):
        _https(server, ctx)


def _foreign_bundle(tmp_path: Path) -> ClientBundle:
    """A client certificate from a CA the server has never seen, trusting the server's CA."""
    other = CertificateAuthority.load_or_create(tmp_path / "other-ca", clock=SystemClock())
    issued = other.issue_client("intruder")
    files = {p.name: p for p in other.write_client_bundle(issued, tmp_path / "intruder")}
    return ClientBundle(other.ca_path, files["intruder.pem"], files["intruder.key"], issued.serial)


def _trusting_server(server: ServerProcess, bundle: ClientBundle) -> ssl.SSLContext:
    """``bundle``'s certificate, but trusting the server's CA so only the client side can fail."""
    return client_ssl_context(server.data_dir / "ca" / "ca.pem", bundle.cert, bundle.key)


async def test_unknown_ca_expired_and_missing_certificates_fail_on_both_ports(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    good = bundle_context(client_bundle(server, "alice", tmp_path))
    watcher = await CotClient.connect(server.ports["tls"], ssl_context=good)
    clients.append(watcher)

    foreign = _trusting_server(server, _foreign_bundle(tmp_path))
    # Issued 400 days ago with the default one-year validity: expired yesterday and before.
    expired = bundle_context(client_bundle(
        server, "lapsed", tmp_path, clock=ManualClock(SystemClock().now_ms() - 400 * DAY_MS)
    ))
    anonymous = ssl.create_default_context(cafile=str(server.data_dir / "ca" / "ca.pem"))
    for ctx in (foreign, expired, anonymous):
        await _refused_on_cot(server, ctx)
        await asyncio.to_thread(_refused_on_https, server, ctx)

    # The valid client is served on both ports, and saw nothing from the refused ones.
    assert (await asyncio.to_thread(_https, server, good)).status_code == 200
    other = await CotClient.connect(server.ports["tls"], ssl_context=good)
    clients.append(other)
    await other.send(sa("uid-alice-2", "ALICE2"))
    await watcher.wait_uid("uid-alice-2")
    assert {e.uid for e in watcher.events if e.type.startswith("a-")} == {"uid-alice-2"}


async def test_revoked_certificate_is_refused_over_https(server: ServerProcess, tmp_path: Path) -> None:
    bundle = client_bundle(server, "mallory", tmp_path)
    ctx = bundle_context(bundle)
    assert (await asyncio.to_thread(_https, server, ctx)).status_code == 200
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rallypoint.cli.main", "cert", "revoke", "mallory", "--data-dir", str(server.data_dir)],
        check=True, capture_output=True, text=True,
    )

    def refused() -> bool:
        try:
            return _https(server, ctx).status_code in (401, 403)
        except (ssl.SSLError, httpx.TransportError):
            return True

    # The server notices the revocation list change within seconds.
    await wait_until(refused, "revoked certificate refused on HTTPS", timeout=15)
    good = bundle_context(client_bundle(server, "alice", tmp_path))
    assert (await asyncio.to_thread(_https, server, good)).status_code == 200


@pytest.fixture
def quick_handshake_server(data_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir, env={"RALLYPOINT_TLS_HANDSHAKE_TIMEOUT_S": "1"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.parametrize("port_name", ["tls", "api", "enroll"])
async def test_a_stalled_tls_handshake_is_dropped_on_every_tls_port(
    quick_handshake_server: ServerProcess, port_name: str
) -> None:
    server = quick_handshake_server
    # Connect and never send a ClientHello: the server must hang up once the handshake timeout passes.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports[port_name])
    try:
        assert await asyncio.wait_for(reader.read(), timeout=15) == b""
    finally:
        writer.close()
    # The listener still serves well-behaved clients.
    good = bundle_context(client_bundle(server, "alice", server.data_dir.parent / f"certs-{port_name}"))
    assert (await asyncio.to_thread(_https, server, good)).status_code == 200
