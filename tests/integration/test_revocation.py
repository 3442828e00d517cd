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


async def test_revoking_a_certificate_ends_api_tokens_but_not_the_account(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    import httpx

    from tests.integration.test_accounts_live import enroll

    password = "lost phone passphrase"
    subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "user", "add", "Pat", "--group", "Red", "--password-stdin",
         "--data-dir", str(server.data_dir)],
        input=password + "\n", check=True, capture_output=True, text=True,
    )  # fmt: skip
    phone_ctx = await asyncio.to_thread(enroll, server, "pat", password, tmp_path / "phone")
    phone = await CotClient.connect(server.ports["tls"], ssl_context=phone_ctx)
    clients.append(phone)
    base = f"http://127.0.0.1:{server.ports['http']}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        answer = await http.post("/api/auth/token", auth=("pat", password))
        assert answer.status_code == 200, answer.text
        bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        assert (await http.get("/api/clients", headers=bearer)).status_code == 200

        await asyncio.to_thread(_revoke, server, "pat")
        # The token dies with the certificate, not when it expires (no waiting: the check reads the
        # token store on every request).
        refused = await http.get("/api/clients", headers=bearer)
        assert refused.status_code == 401, refused.text
        await asyncio.wait_for(phone.closed.wait(), timeout=10)

        # The account stays usable: the replacement phone enrolls with the password and connects.
        new_ctx = await asyncio.to_thread(enroll, server, "pat", password, tmp_path / "new-phone")
        new_phone = await CotClient.connect(server.ports["tls"], ssl_context=new_ctx)
        clients.append(new_phone)
        await new_phone.send(sa("uid-pat", "PAT"))
        watcher = await CotClient.connect(server.ports["tls"], ssl_context=_client_ctx(server, "Pat", tmp_path)[0])
        clients.append(watcher)
        await watcher.wait_uid("uid-pat")
        again = await http.post("/api/auth/token", auth=("pat", password))
        assert again.status_code == 200


async def test_an_unreadable_revocation_list_does_not_stop_the_server(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    mallory_ctx, _ = _client_ctx(server, "mallory", tmp_path)
    alice_ctx, _ = _client_ctx(server, "alice", tmp_path)
    mallory = await CotClient.connect(server.ports["tls"], ssl_context=mallory_ctx)
    alice = await CotClient.connect(server.ports["tls"], ssl_context=alice_ctx)
    clients.extend([mallory, alice])

    revoked = server.data_dir / "ca" / "revoked.json"
    good = revoked.read_bytes() if revoked.exists() else b"[]"
    revoked.write_bytes(b'[{"serial": "half-writ')
    await asyncio.to_thread(server.wait_for_log, "upkeep step failed; retrying", 15, step="revocations")
    await mallory.send(sa("uid-mallory", "MALLORY"))
    await alice.wait_uid("uid-mallory")

    # Once the list is readable again, revocation is enforced as usual.
    revoked.write_bytes(good)
    await asyncio.to_thread(_revoke, server, "mallory")
    await asyncio.wait_for(mallory.closed.wait(), timeout=10)
    assert not alice.closed.is_set()
