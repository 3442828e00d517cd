"""Accounts over the real server: enrollment on the enrollment port, live group changes, disabled
accounts, and an audit log that verifies afterwards."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, sa
from tests.support.server import ServerProcess


def _cli(server: ServerProcess, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", *args, "--data-dir", str(server.data_dir)],
        input=stdin, capture_output=True, text=True, check=True,
    )


def enroll(server: ServerProcess, user: str, password: str, out: Path) -> ssl.SSLContext:
    """The ATAK/iTAK enrollment flow against the running server, ending in a client TLS context."""
    ca_pem = server.data_dir / "ca" / "ca.pem"
    base = f"https://127.0.0.1:{server.ports['enroll']}"
    verify = ssl.create_default_context(cafile=str(ca_pem))
    with httpx.Client(verify=verify, auth=(user, password), timeout=10) as http:
        config = http.get(f"{base}/Marti/api/tls/config")
        assert config.status_code == 200 and b"nameEntry" in config.content
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
            .sign(key, hashes.SHA256())
        )
        body = base64.b64encode(csr.public_bytes(serialization.Encoding.DER))
        signed = http.post(f"{base}/Marti/api/tls/signClient/v2?clientUid=ANDROID-{user}", content=body)
        assert signed.status_code == 200, signed.text
    pem = "-----BEGIN CERTIFICATE-----\n" + signed.json()["signedCert"] + "\n-----END CERTIFICATE-----\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cert.pem").write_text(pem)
    (out / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.create_default_context(cafile=str(ca_pem))
    ctx.load_cert_chain(out / "cert.pem", out / "key.pem")
    return ctx


async def test_enroll_then_live_group_change_and_disable(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    await asyncio.to_thread(_cli, server, "user", "add", "alice", "--group", "Red", "--password-stdin",
                            stdin="correct horse battery\n")
    await asyncio.to_thread(_cli, server, "user", "add", "bob", "--group", "Blue", "--password-stdin",
                            stdin="another good passphrase\n")
    await asyncio.to_thread(_cli, server, "user", "add", "carol", "--group", "Red", "--password-stdin",
                            stdin="third secret phrase\n")
    alice_ctx = await asyncio.to_thread(enroll, server, "alice", "correct horse battery", tmp_path / "alice")
    bob_ctx = await asyncio.to_thread(enroll, server, "bob", "another good passphrase", tmp_path / "bob")
    carol_ctx = await asyncio.to_thread(enroll, server, "carol", "third secret phrase", tmp_path / "carol")

    alice = await CotClient.connect(server.ports["tls"], ssl_context=alice_ctx)
    bob = await CotClient.connect(server.ports["tls"], ssl_context=bob_ctx)
    carol = await CotClient.connect(server.ports["tls"], ssl_context=carol_ctx)
    clients.extend([alice, bob, carol])
    await alice.send(sa("uid-alice", "ALICE"))
    await carol.wait_uid("uid-alice")
    await bob.barrier(bob_peer := await CotClient.connect(server.ports["tls"], ssl_context=bob_ctx))
    clients.append(bob_peer)
    assert not bob.has(lambda e: e.uid == "uid-alice"), "Blue must not see Red"

    # Move bob into Red: his live session is told (t-x-g-c) and now receives Red traffic.
    await asyncio.to_thread(_cli, server, "user", "groups", "bob", "--group", "Red")
    await bob.wait_for(lambda e: e.type == "t-x-g-c", timeout=10)
    await bob.wait_uid("uid-alice")  # the Red picture is sent on regroup
    await alice.send(sa("uid-alice", "ALICE", lat=41.0))
    await bob.wait_for(lambda e: e.uid == "uid-alice" and e.point.lat == 41.0)

    # Disable carol: her session is closed within seconds; a new connection is refused.
    await asyncio.to_thread(_cli, server, "user", "disable", "carol")
    await asyncio.wait_for(carol.closed.wait(), timeout=10)
    again = await CotClient.connect(server.ports["tls"], ssl_context=carol_ctx, wait_registered=False)
    clients.append(again)
    await asyncio.wait_for(again.closed.wait(), timeout=10)

    # Wrong password: 401, and nothing is issued.
    base = f"https://127.0.0.1:{server.ports['enroll']}"
    verify = ssl.create_default_context(cafile=str(server.data_dir / "ca" / "ca.pem"))
    async with httpx.AsyncClient(verify=verify, auth=("alice", "wrong"), timeout=10) as http:
        assert (await http.get(f"{base}/Marti/api/tls/config")).status_code == 401

    # The audit log holds the story and verifies.
    await asyncio.to_thread(server.terminate)
    verified = await asyncio.to_thread(_cli, server, "audit", "verify")
    assert "audit log OK" in verified.stdout
    listing = (await asyncio.to_thread(_cli, server, "audit", "list", "--json")).stdout
    for action in ("user.add", "enrollment.signed", "login.ok", "group.change", "user.disable", "enrollment.denied"):
        assert f'"{action}"' in listing, action


async def test_hostile_audit_target_is_recorded_and_the_server_keeps_running(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    # A uid may be up to 512 characters; the audit log keeps 256. The over-long value must be
    # recorded (cut and escaped), never take the server down.
    long_uid = "LONG-" + "x" * 295
    ctx = client_context(server, "longuid", tmp_path)
    streamer = await CotClient.connect(server.ports["tls"], ssl_context=ctx)
    witness = await CotClient.connect(server.ports["cot"])
    clients.extend([streamer, witness])
    await streamer.send(sa(long_uid, "LONG"))
    await witness.wait_uid(long_uid)
    api = f"https://127.0.0.1:{server.ports['api']}"
    async with httpx.AsyncClient(verify=ctx, timeout=10) as http:
        r = await http.put(f"{api}/Marti/api/groups/active", params={"clientUid": long_uid}, json=[])
        assert r.status_code == 200, r.text
        # A later audited request is written too: the recorder went on.
        r = await http.put(f"{api}/Marti/api/groups/active", params={"clientUid": long_uid}, json=[])
        assert r.status_code == 200
    health = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{server.ports['http']}/api/health", timeout=5)
    assert health.status_code == 200
    await witness.send(sa("after-hostile", "AFTER"))
    await streamer.wait_uid("after-hostile")
    metrics = (await asyncio.to_thread(
        httpx.get, f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5)).text
    assert "rallypoint_audit_failed_total 0.0" in metrics

    assert await asyncio.to_thread(server.terminate) == 0
    verified = await asyncio.to_thread(_cli, server, "audit", "verify")
    assert "audit log OK" in verified.stdout
    listing = json.loads((await asyncio.to_thread(_cli, server, "audit", "list", "--json")).stdout)
    targets = [e["target"] for e in listing if e["action"] == "groups.active"]
    assert len(targets) == 2
    assert all(t.startswith("LONG-xxxx") and "...(+" in t and len(t) <= 256 for t in targets)


async def test_wrong_passwords_lock_the_account_on_the_enrollment_port(data_dir: Path) -> None:
    server = ServerProcess(data_dir, env={"RALLYPOINT_LOGIN_MAX_FAILURES": "3", "RALLYPOINT_LOGIN_LOCKOUT_S": "600"})
    server.start()
    try:
        for name, password in (("dave", "dave's right passphrase"), ("erin", "erin's right passphrase")):
            await asyncio.to_thread(_cli, server, "user", "add", name, "--password-stdin", stdin=password + "\n")
        base = f"https://127.0.0.1:{server.ports['enroll']}"
        verify = ssl.create_default_context(cafile=str(server.data_dir / "ca" / "ca.pem"))

        async def config_as(user: str, password: str) -> httpx.Response:
            async with httpx.AsyncClient(verify=verify, auth=(user, password), timeout=10) as http:
                return await http.get(f"{base}/Marti/api/tls/config")

        assert (await config_as("dave", "dave's right passphrase")).status_code == 200
        for _ in range(3):
            assert (await config_as("dave", "wrong")).status_code == 401
        # Locked: even the right password is refused (the answer does not say why; the audit log does).
        assert (await config_as("dave", "dave's right passphrase")).status_code == 401
        # The lock is per account: another user logs in as usual.
        assert (await config_as("erin", "erin's right passphrase")).status_code == 200
        # An operator lifts the lock at once instead of waiting the 600 s out.
        await asyncio.to_thread(_cli, server, "user", "unlock", "dave")
        assert (await config_as("dave", "dave's right passphrase")).status_code == 200
        assert await asyncio.to_thread(server.terminate) == 0
    finally:
        server.stop()
    listing = json.loads((await asyncio.to_thread(_cli, server, "audit", "list", "--json")).stdout)
    denied = [e for e in listing if e["action"] == "enrollment.denied" and e["actor"] == "dave"]
    reasons = [e["detail"].get("reason") for e in denied]
    assert reasons == ["bad_password"] * 3 + ["locked"]
    unlocks = [e for e in listing if e["action"] == "user.unlock"]
    assert [(e["target"], e["detail"]["was_locked"]) for e in unlocks] == [("dave", "yes")]


async def test_a_corrupt_account_row_does_not_stop_the_server(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    import sqlite3

    for name, group in (("alice", "Red"), ("carol", "Red"), ("bob", "Blue")):
        await asyncio.to_thread(_cli, server, "user", "add", name, "--group", group)
    tls = server.ports["tls"]
    alice = await CotClient.connect(tls, ssl_context=client_context(server, "alice", tmp_path / "alice"))
    carol = await CotClient.connect(tls, ssl_context=client_context(server, "carol", tmp_path / "carol"))
    bob = await CotClient.connect(tls, ssl_context=client_context(server, "bob", tmp_path / "bob"))
    clients.extend([alice, carol, bob])

    # A row the server cannot decode (as a hand edit or a partly written change would leave it).
    db = sqlite3.connect(server.data_dir / "users.db")
    with db:
        db.execute(
            "INSERT INTO users (name, role, groups_in, groups_out, password_hash, disabled, created_ms, updated_ms,"
            " failed_logins, locked_until_ms) VALUES ('mallory', 'member', '{not json', '[]', NULL, 0, 0, 0, 0, NULL)"
        )
    await asyncio.to_thread(server.wait_for_log, "upkeep step failed; retrying", 15, step="accounts")

    # Still serving: live sessions route, and a new connection is accepted.
    await alice.send(sa("uid-alice", "ALICE"))
    await carol.wait_uid("uid-alice")
    late = await CotClient.connect(tls, ssl_context=client_context(server, "carol", tmp_path / "late"))
    clients.append(late)
    await late.wait_uid("uid-alice")
    metrics = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    counter = 'rallypoint_upkeep_failures_total{step="accounts"}'
    failures = [line for line in metrics.splitlines() if line.startswith(counter)]
    assert failures and float(failures[0].split()[-1]) >= 1

    # A change made meanwhile waits for a readable store; once the row is repaired it applies.
    await asyncio.to_thread(_cli, server, "user", "groups", "bob", "--group", "Red")
    with db:
        db.execute("UPDATE users SET groups_in = '[]' WHERE name = 'mallory'")
    db.close()
    await bob.wait_for(lambda e: e.type == "t-x-g-c", timeout=15)
    await alice.send(sa("uid-alice", "ALICE", lat=42.0))
    await bob.wait_for(lambda e: e.uid == "uid-alice" and e.point.lat == 42.0)
    await asyncio.to_thread(server.wait_for_log, "upkeep step recovered", 10, step="accounts")
    assert server.proc is not None and server.proc.poll() is None
