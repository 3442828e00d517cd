"""CA lifecycle against the real server: not-yet-valid certificates refused, rotation keeps old
client certificates working, and every CA action lands in the audit log."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

from rallypoint.clock import ManualClock, SystemClock
from rallypoint.transport.tls import client_ssl_context
from tests.support.certs import bundle_context, client_bundle
from tests.support.cot_client import CotClient, sa
from tests.support.server import ServerProcess


def _cli(data_dir: Path, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, check=True,
    ).stdout


async def test_not_yet_valid_certificate_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    system = SystemClock()
    future = ManualClock(system.now_ms() + 3 * 86_400_000)
    ctx = bundle_context(client_bundle(server, "early", tmp_path, clock=future))
    client = await CotClient.connect(server.ports["tls"], ssl_context=ctx, wait_registered=False)
    try:
        await asyncio.wait_for(client.closed.wait(), timeout=10)
        assert not client.events
    finally:
        await client.close()


async def test_rotation_keeps_old_client_certificates_and_is_audited(data_dir: Path, tmp_path: Path) -> None:
    _cli(data_dir, "cert", "issue", "before", "--out", str(tmp_path / "before"))
    old_ca_pem = (data_dir / "ca" / "ca.pem").read_bytes()
    out = _cli(data_dir, "ca", "rotate")
    assert "new CA fingerprint" in out
    assert (data_dir / "ca" / "ca.pem").read_bytes() != old_ca_pem
    _cli(data_dir, "cert", "issue", "after", "--out", str(tmp_path / "after"))

    server = ServerProcess(data_dir)
    server.start()
    try:
        new_ca = data_dir / "ca" / "ca.pem"
        old_client = client_ssl_context(new_ca, tmp_path / "before" / "before.pem", tmp_path / "before" / "before.key")
        new_client = client_ssl_context(new_ca, tmp_path / "after" / "after.pem", tmp_path / "after" / "after.key")
        a = await CotClient.connect(server.ports["tls"], ssl_context=old_client)
        b = await CotClient.connect(server.ports["tls"], ssl_context=new_client)
        try:
            await a.send(sa("uid-before", "BEFORE"))
            await b.wait_uid("uid-before")
        finally:
            await a.close()
            await b.close()
        # A client that only trusts the old CA no longer trusts the new server certificate.
        stale_trust = ssl.create_default_context(cafile=str(tmp_path / "before" / "ca.pem"))
        stale_trust.load_cert_chain(tmp_path / "before" / "before.pem", tmp_path / "before" / "before.key")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", server.ports["tls"], ssl=stale_trust)
            writer.close()
            raise AssertionError("handshake should fail against the rotated server certificate")
        except ssl.SSLCertVerificationError:
            pass
    finally:
        server.stop()
    listing = _cli(data_dir, "audit", "list", "--json")
    assert listing.count('"cert.issue"') == 2 and '"ca.rotate"' in listing
    assert "audit log OK" in _cli(data_dir, "audit", "verify")
