"""Revocation is enforced on new and existing TLS connections, and a CRL is published."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from tests.support.certs import bundle_context, client_bundle
from tests.support.cot_client import CotClient, sa
from tests.support.server import ServerProcess


def _client_ctx(server: ServerProcess, name: str, out: Path) -> tuple[ssl.SSLContext, int]:
    bundle = client_bundle(server, name, out)
    return bundle_context(bundle), bundle.serial


def _revoke(server: ServerProcess, name: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "cert", "revoke", name, "--data-dir", str(server.data_dir)],
        check=True, capture_output=True, text=True,
    )


async def test_revoked_client_is_disconnected_and_refused(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    mallory_ctx, serial = _client_ctx(server, "mallory", tmp_path)
    alice_ctx, _ = _client_ctx(server, "alice", tmp_path)
    mallory = await CotClient.connect(server.ports["tls"], ssl_context=mallory_ctx)
    alice = await CotClient.connect(server.ports["tls"], ssl_context=alice_ctx)
    clients.extend([mallory, alice])
    await mallory.send(sa("uid-mallory", "MALLORY"))
    await alice.wait_uid("uid-mallory")

    await asyncio.to_thread(_revoke, server, "mallory")
    # The live session is closed within seconds (the server polls a file stamp every 2 s).
    await asyncio.wait_for(mallory.closed.wait(), timeout=10)
    await alice.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == "uid-mallory")

    # A new connection with the revoked certificate gets nothing and is closed.
    again = await CotClient.connect(server.ports["tls"], ssl_context=mallory_ctx, wait_registered=False)
    clients.append(again)
    await asyncio.wait_for(again.closed.wait(), timeout=10)
    assert not again.events

    # The CRL lists the serial and is served over HTTP.
    import httpx

    crl_pem = httpx.get(f"http://127.0.0.1:{server.ports['http']}/crl.pem", timeout=5).content
    crl = x509.load_pem_x509_crl(crl_pem)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    # Alice is unaffected.
    await alice.send(sa("uid-alice", "ALICE"))
    watcher = await CotClient.connect(server.ports["tls"], ssl_context=_client_ctx(server, "bob", tmp_path)[0])
    clients.append(watcher)
    await watcher.wait_uid("uid-alice")
