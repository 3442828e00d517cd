"""The native API on the real server: tokens, group isolation on every endpoint, admin, OpenAPI."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import httpx

from tests.support.accounts import PASSWORDS, run_cli
from tests.support.certs import client_bundle
from tests.support.cot_client import CotClient, sa
from tests.support.server import ServerProcess


def tls_files(server: ServerProcess, name: str, tmp: Path) -> tuple[Path, Path, Path]:
    """(cert, key, ca) PEM paths of a fresh client certificate for ``name``."""
    bundle = client_bundle(server, name, tmp)
    return bundle.cert, bundle.key, bundle.ca


def tls_context(server: ServerProcess, name: str, tmp: Path) -> ssl.SSLContext:
    cert, key, ca = tls_files(server, name, tmp)
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(cert, key)
    return context


async def alogin(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    answer = await http.post("/api/auth/token", auth=(name, PASSWORDS[name]))
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_groups_are_isolated_on_every_endpoint(
    api_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    tls = api_server.ports["tls"]
    alice_dev = await CotClient.connect(tls, ssl_context=tls_context(api_server, "alice", tmp_path))
    bob_ctx = tls_context(api_server, "bob", tmp_path)
    bob_dev = await CotClient.connect(tls, ssl_context=bob_ctx)
    bob_peer = await CotClient.connect(tls, ssl_context=bob_ctx)
    clients.extend([alice_dev, bob_dev, bob_peer])
    await alice_dev.send(sa("uid-alice", "ALICE"))
    await bob_dev.send(sa("uid-bob", "BOB"))

    base = f"http://127.0.0.1:{api_server.ports['http']}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        alice, bob = await alogin(http, "alice"), await alogin(http, "bob")

        async def uids(path: str, headers: dict[str, str]) -> set[str]:
            answer = await http.get(path, headers=headers)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            rows = body["events"] if isinstance(body, dict) and "events" in body else body
            if isinstance(body, dict) and body.get("type") == "FeatureCollection":
                rows = [{"uid": f["id"]} for f in body["features"]]
            return {row["uid"] for row in rows}

        async def eventually_has(path: str, headers: dict[str, str], uid: str) -> set[str]:
            """Poll (with a deadline) until ``uid`` shows up: the server applies events asynchronously."""
            deadline = time.monotonic() + 10
            while uid not in (found := await uids(path, headers)):
                assert time.monotonic() < deadline, f"{uid} never appeared in {path}: {found}"
                await asyncio.sleep(0.05)
            return found

        for path in ("/api/clients", "/api/tracks", "/api/tracks?format=geojson", "/api/history"):
            assert await eventually_has(path, alice, "uid-alice") == {"uid-alice"}, path
            assert await eventually_has(path, bob, "uid-bob") == {"uid-bob"}, path

        # Chat: within the group it reaches the device; across groups it is refused and never leaks.
        to_bob = await http.post("/api/chat", headers=alice, json={"text": "psst", "to_uid": "uid-bob"})
        assert to_bob.status_code == 404
        sent = await http.post("/api/chat", headers=alice, json={"text": "hello team", "room": "All Chat Rooms"})
        assert sent.status_code == 201, sent.text
        chat_uid = sent.json()["uid"]
        direct = await http.post("/api/chat", headers=alice, json={"text": "to me", "to_callsign": "ALICE"})
        assert direct.status_code == 201 and direct.json()["recipients"] == 1
        got = await alice_dev.wait_uid(chat_uid)
        assert got.type == "b-t-f" and b"hello team" in got.detail.xml
        await alice_dev.wait_uid(direct.json()["uid"])
        await bob_dev.barrier(bob_peer)  # everything routed before now has reached bob's device
        assert not bob_dev.has(lambda e: e.type == "b-t-f")
        await eventually_has("/api/history?type=b-t-f", alice, chat_uid)
        assert await uids("/api/history?type=b-t-f", bob) == set()
        assert await uids("/api/emergencies", bob) == set()

        # Emergencies raised over the API reach the caller's groups only.
        alert = await http.post("/api/emergencies", headers=alice, json={"lat": 1.5, "lon": 2.5})
        assert alert.status_code == 201, alert.text
        alert_uid = alert.json()["uid"]
        assert (await alice_dev.wait_uid(alert_uid)).type == "b-a-o-tbl"
        assert await uids("/api/emergencies", alice) == {alert_uid}
        assert await uids("/api/emergencies", bob) == set()
        assert (await http.post(f"/api/emergencies/{alert_uid}/cancel", headers=bob)).status_code == 403

        # Data packages: group B cannot list, read, download or delete group A's package.
        up = await http.post("/api/packages", headers=alice, params={"name": "a.txt"}, content=b"group A only")
        assert up.status_code == 201, up.text
        digest = up.json()["hash"]
        assert {p["hash"] for p in (await http.get("/api/packages", headers=alice)).json()} == {digest}
        assert (await http.get("/api/packages", headers=bob)).json() == []
        for method, path in (("GET", f"/api/packages/{digest}"), ("GET", f"/api/packages/{digest}/content"),
                             ("DELETE", f"/api/packages/{digest}")):
            assert (await http.request(method, path, headers=bob)).status_code == 404, (method, path)

        # Missions: group B cannot list, read, subscribe, change or delete group A's mission.
        made = await http.post("/api/missions", headers=alice, json={"name": "OpA", "uid": "uid-alice"})
        assert made.status_code == 201, made.text
        assert [m["name"] for m in (await http.get("/api/missions", headers=bob)).json()] == []
        for method, path, body in (
            ("GET", "/api/missions/OpA", None), ("GET", "/api/missions/OpA/changes", None),
            ("GET", "/api/missions/OpA/subscriptions", None), ("PUT", "/api/missions/OpA/subscription", {}),
            ("DELETE", "/api/missions/OpA/subscription", None),
            ("POST", "/api/missions/OpA/contents", {"uids": ["uid-bob"]}),
            ("DELETE", f"/api/missions/OpA/contents/{digest}", None), ("DELETE", "/api/missions/OpA/uids/x", None),
            ("DELETE", "/api/missions/OpA", None),
        ):
            answer = await http.request(method, path, headers=bob, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
        # ... nor put group A's package into a mission of its own, nor claim alice's device uid.
        assert (await http.post("/api/missions", headers=bob, json={"name": "OpB"})).status_code == 201
        smuggled = await http.post("/api/missions/OpB/contents", headers=bob, json={"hashes": [digest]})
        assert smuggled.status_code == 404, smuggled.text
        assert (await http.get("/api/missions/OpB", headers=bob)).json()["contents"] == []
        claimed = await http.put("/api/missions/OpB/subscription", headers=bob, json={"uid": "uid-alice"})
        assert claimed.status_code == 403, claimed.text
        # Alice's own changes reach her subscribed device as mission notices.
        added = await http.post("/api/missions/OpA/contents", headers=alice, params={"uid": "uid-alice"},
                                json={"hashes": [digest]})
        assert added.status_code == 200, added.text
        notice = await alice_dev.wait_for(lambda e: e.type.startswith("t-x-m-c"))
        assert b"OpA" in notice.detail.xml
        await bob_dev.barrier(bob_peer)
        # (bob's device did hear of OpB, created in its own group; nothing of OpA or alice's alert.)
        assert bob_dev.has(lambda e: e.type.startswith("t-x-m") and b"OpB" in e.detail.xml)
        assert not bob_dev.has(lambda e: e.type.startswith("b-a") or b"OpA" in e.detail.xml)
        assert (await http.get(f"/api/packages/{digest}/content", headers=alice)).content == b"group A only"

        # Admin endpoints: 403 for members, 200 for the admin.
        root = await alogin(http, "root")
        for method, path in (("GET", "/api/admin/users"), ("DELETE", "/api/admin/users/bob/tokens")):
            assert (await http.request(method, path, headers=alice)).status_code == 403
        assert (await http.patch("/api/admin/users/bob", headers=alice, json={"role": "admin"})).status_code == 403
        names = {u["name"] for u in (await http.get("/api/admin/users", headers=root)).json()}
        assert names == {"alice", "bob", "root"}

        # Revocation: by the holder, and by an admin for all of a user's tokens.
        assert (await http.delete("/api/auth/token", headers=alice)).status_code == 204
        assert (await http.get("/api/clients", headers=alice)).status_code == 401
        bob2 = await alogin(http, "bob")
        revoked = await http.delete("/api/admin/users/bob/tokens", headers=root)
        assert revoked.status_code == 200 and revoked.json()["revoked"] == 2
        for headers in (bob, bob2):
            assert (await http.get("/api/tracks", headers=headers)).status_code == 401
        assert (await http.get("/api/clients", headers={"Authorization": "Bearer not-a-token"})).status_code == 401

        # A disabled account's tokens stop working at once (the CLI edits the store from outside).
        bob3 = await alogin(http, "bob")
        await asyncio.to_thread(run_cli, api_server.data_dir, "user", "disable", "bob")
        assert (await http.get("/api/clients", headers=bob3)).status_code == 401
        assert (await http.post("/api/auth/token", auth=("bob", PASSWORDS["bob"]))).status_code == 401


async def test_certificate_login_over_https_and_token_use_over_http(api_server: ServerProcess, tmp_path: Path) -> None:
    cert, key, ca = tls_files(api_server, "alice", tmp_path)
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(cert, key)
    alice_dev = await CotClient.connect(api_server.ports["tls"], ssl_context=context)
    try:
        await alice_dev.send(sa("uid-alice", "ALICE"))
        https = f"https://127.0.0.1:{api_server.ports['api']}"
        async with httpx.AsyncClient(base_url=https, verify=context, timeout=10) as http:
            issued = await http.post("/api/auth/token")
            assert issued.status_code == 200, issued.text
            token = issued.json()["access_token"]
            seen = await http.get("/api/clients")
            assert seen.status_code == 200
        plain = f"http://127.0.0.1:{api_server.ports['http']}"
        async with httpx.AsyncClient(base_url=plain, timeout=10) as http:
            assert (await http.get("/api/clients")).json() == []  # anonymous sees no group A client
            deadline = time.monotonic() + 10
            while True:
                found = (await http.get("/api/clients", headers={"Authorization": f"Bearer {token}"})).json()
                if [c["uid"] for c in found] == ["uid-alice"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert [c["uid"] for c in found] == ["uid-alice"]
            assert found[0]["principal"] == "alice"
    finally:
        await alice_dev.close()


def test_openapi_is_served_and_valid(api_server: ServerProcess) -> None:
    base = f"http://127.0.0.1:{api_server.ports['http']}"
    with httpx.Client(base_url=base, timeout=10) as http:
        doc = http.get("/api/openapi.json").json()
        docs = http.get("/api/docs")
    assert docs.status_code == 200 and "/api/openapi.json" in docs.text
    assert doc["openapi"].startswith("3.1")
    expected = {"/api/auth/token", "/api/clients", "/api/tracks", "/api/history", "/api/chat", "/api/emergencies",
                "/api/emergencies/{uid}/cancel", "/api/admin/users", "/api/admin/users/{name}",
                "/api/admin/users/{name}/tokens", "/api/openapi.json", "/api/docs"}
    assert expected <= set(doc["paths"])
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["responses"], path
            for response in op["responses"].values():
                for media in response.get("content", {}).values():
                    ref = media["schema"].get("$ref", "")
                    assert not ref or ref.split("/")[-1] in doc["components"]["schemas"], ref
    try:
        from openapi_spec_validator import validate
    except ImportError:
        return  # structural checks above still ran
    validate(doc)
