"""``rallypoint.client`` against the real server: the REST client and CotStream."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from rallypoint.client import ApiError, AsyncRallypointClient, CotStream, RallypointClient, client_ssl_context
from tests.integration.test_native_api import tls_context, tls_files
from tests.support.accounts import PASSWORDS
from tests.support.cot_client import CotClient, cot, sa
from tests.support.poll import wait_until_sync
from tests.support.server import ServerProcess


async def test_rest_client_login_clients_history_chat_and_admin(
    api_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    cert, key, ca = tls_files(api_server, "alice", tmp_path)
    device = await CotClient.connect(api_server.ports["tls"], ssl_context=client_ssl_context(str(ca), str(cert),
                                                                                          str(key)))
    clients.append(device)
    await device.send(sa("uid-alice", "ALICE"))
    base = f"http://127.0.0.1:{api_server.ports['http']}"

    def sync_part() -> None:
        with RallypointClient(base, username="alice", password=PASSWORDS["alice"]) as api:
            deadline = time.monotonic() + 10
            while not [c for c in api.clients() if c["uid"] == "uid-alice"]:
                assert time.monotonic() < deadline, "alice's device never showed up"
                time.sleep(0.05)
            assert api.token is not None
            sent = api.send_chat("from the client", to_uid="uid-alice")
            assert sent["recipients"] == 1
            deadline = time.monotonic() + 10
            while not api.history(uid="uid-alice", limit=10)["events"]:
                assert time.monotonic() < deadline, "history never recorded alice"
                time.sleep(0.05)
            assert api.tracks(geojson=True)["type"] == "FeatureCollection"
            with pytest.raises(ApiError) as refused:
                api.users()
            assert refused.value.status == 403
            # An expired or revoked token is replaced by logging in again with the stored credentials.
            api.logout()
            assert api.token is None and api.clients()
        with pytest.raises(ApiError) as bad:
            RallypointClient(base, username="alice", password="wrong").clients()
        assert bad.value.status == 401
        return None

    await asyncio.to_thread(sync_part)
    chat = await device.wait_for(lambda e: e.type == "b-t-f")
    assert b"from the client" in chat.detail.xml

    async with AsyncRallypointClient(base, username="root", password=PASSWORDS["root"]) as admin:
        created = await admin.create_user("dora", groups=["A"], password="dora passphrase 4")
        assert created["groups_in"] == ["A"]
        assert {u["name"] for u in await admin.users()} >= {"alice", "dora"}
        assert (await admin.disable_user("dora"))["disabled"] is True
        assert (await admin.revoke_user_tokens("alice"))["revoked"] >= 1
        assert (await admin.openapi())["openapi"].startswith("3.1")

    # HTTPS with the client certificate alone: no password, no explicit token.
    https = f"https://127.0.0.1:{api_server.ports['api']}"
    with RallypointClient(https, cert=(str(cert), str(key)), ca=str(ca)) as by_cert:
        token = await asyncio.to_thread(by_cert.login)
        assert token and by_cert.token == token
        assert [c["uid"] for c in await asyncio.to_thread(by_cert.clients)] == ["uid-alice"]


async def test_cot_stream_sends_and_receives(api_server: ServerProcess, tmp_path: Path) -> None:
    cert, key, ca = tls_files(api_server, "alice", tmp_path)
    tls = client_ssl_context(str(ca), str(cert), str(key))
    port = api_server.ports["cot"]
    async with CotStream.connect("127.0.0.1", port, wait_ready=True) as receiver:
        assert receiver.announced
        async with CotStream.connect("127.0.0.1", port, wait_ready=True) as sender:
            await sender.send(sa("uid-stream-1", "STREAM1"))
            event = await receiver.receive(timeout=10)
            assert event.uid == "uid-stream-1" and event.detail.callsign == "STREAM1"
    # Over TLS with a client certificate, iterating with async for.
    secure = await CotStream.connect("127.0.0.1", api_server.ports["tls"], ssl=tls, wait_ready=True)
    peer = await CotStream.connect("127.0.0.1", api_server.ports["tls"], ssl=tls, wait_ready=True)
    try:
        await peer.send(sa("uid-stream-2", "STREAM2"))
        async with asyncio.timeout(10):
            async for event in secure:
                if event.uid == "uid-stream-2":
                    break
        assert event.type == "a-f-G-U-C"
    finally:
        await secure.close()
        await peer.close()


async def test_rest_client_packages_missions_emergencies_history_and_admin(
    api_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    cert, key, ca = tls_files(api_server, "alice", tmp_path)
    device = await CotClient.connect(api_server.ports["tls"], ssl_context=client_ssl_context(str(ca), str(cert),
                                                                                          str(key)))
    clients.append(device)
    await device.send(sa("uid-alice", "ALICE"))
    base = f"http://127.0.0.1:{api_server.ports['http']}"

    def alice_part() -> str:
        with RallypointClient(base, username="alice", password=PASSWORDS["alice"]) as api:
            stored = api.upload_package(b"route card", name="route.txt", keywords=["route"],
                                        content_type="text/plain")
            assert stored["created"] is True and stored["groups"] == ["A"]
            digest = str(stored["hash"])
            assert api.download_package(digest) == b"route card"
            assert [p["hash"] for p in api.packages(keyword="route")] == [digest]
            assert api.package(digest)["name"] == "route.txt"

            made = api.create_mission("Bridge", description="cross at dawn", keywords=["river"], uid="uid-alice")
            assert made["role"] == "MISSION_OWNER" and made["groups"] == ["A"]
            changes = api.add_mission_contents("Bridge", hashes=[digest], uids=["marker-1"], uid="uid-alice")
            assert len(changes) == 2
            assert api.mission("Bridge")["contents"] == [{"hash": digest, "name": "route.txt"}]
            assert [m["name"] for m in api.missions()] == ["Bridge"]
            assert {s["uid"] for s in api.mission_subscriptions("Bridge")} == {"uid-alice"}
            api.remove_mission_uid("Bridge", "marker-1", uid="uid-alice")
            assert [c["type"] for c in api.mission_changes("Bridge")] == [
                "CREATE_MISSION", "ADD_CONTENT", "ADD_CONTENT", "REMOVE_CONTENT"]
            sub = api.subscribe_mission("Bridge")
            assert sub["uid"] == "rallypoint-api-alice"
            assert api.unsubscribe_mission("Bridge")["deleted"] is True

            alert = api.raise_emergency(42.4, -71.1, kind="In Contact", callsign="ALI")
            assert alert["type"] == "b-a-o-opn"
            assert [e["uid"] for e in api.emergencies()] == [alert["uid"]]

            # Storage is batched: wait for the alert to be written, then walk history a page at a time.
            deadline = time.monotonic() + 10
            while not api.history(type="b-a", limit=10)["events"]:
                assert time.monotonic() < deadline, "the alert never reached history"
                time.sleep(0.05)
            everything = api.history(limit=5000)
            assert everything["next"] is None
            seen: list[str] = []
            page = api.history(limit=1)
            while True:
                seen.extend(e["uid"] for e in page["events"])
                if page["next"] is None:
                    break
                page = api.history(limit=1, cursor=page["next"])
            assert seen[:everything["count"]] == [e["uid"] for e in everything["events"]]
            assert "uid-alice" in seen and alert["uid"] in seen
            with pytest.raises(ApiError) as bad:
                api.delete_mission("Nope")
            assert bad.value.status == 404
            return digest

    digest = await asyncio.to_thread(alice_part)
    notice = await device.wait_for(lambda e: e.type.startswith("t-x-m-c"))
    assert b"Bridge" in notice.detail.xml

    async with AsyncRallypointClient(base, username="bob", password=PASSWORDS["bob"]) as bob:
        assert await bob.packages() == [] and await bob.missions() == []
        with pytest.raises(ApiError) as hidden:
            await bob.download_package(digest)
        assert hidden.value.status == 404

    async with AsyncRallypointClient(base, username="root", password=PASSWORDS["root"]) as admin:
        assert {g["name"] for g in await admin.groups()} >= {"A", "B", "Ops"}
        assert (await admin.set_role("bob", "approver"))["role"] == "approver"
        assert (await admin.delete_user("bob"))["disabled"] is True
        # Admins act as owners, but only within groups they read (root is in Ops, not A).
        with pytest.raises(ApiError) as unseen:
            await admin.delete_mission("Bridge")
        assert unseen.value.status == 404

    def alice_cleans_up() -> None:
        with RallypointClient(base, username="alice", password=PASSWORDS["alice"]) as api:
            assert api.delete_mission("Bridge")["deleted"] is True
            assert api.delete_package(digest)["deleted"] is True
            assert api.packages() == [] and api.missions() == []

    await asyncio.to_thread(alice_cleans_up)
    with pytest.raises(ApiError) as gone:
        await asyncio.to_thread(RallypointClient(base, username="bob", password=PASSWORDS["bob"]).clients)
    assert gone.value.status == 401


async def test_rest_client_bbox_across_the_antimeridian(
    api_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    device = await CotClient.connect(api_server.ports["tls"], ssl_context=tls_context(api_server, "alice", tmp_path))
    clients.append(device)
    await device.send(sa("uid-alice", "ALICE", lat=0.0, lon=10.0))
    for uid, lon in (("east-of-dateline", 179.5), ("west-of-dateline", -179.5), ("greenwich", 0.0)):
        await device.send(cot(uid, "a-h-G", lat=-15.0, lon=lon))
    box = (170, -20, -170, -10)  # west > east: 20 degrees of longitude centred on the 180th meridian

    def across() -> None:
        with RallypointClient(f"http://127.0.0.1:{api_server.ports['http']}", username="alice",
                              password=PASSWORDS["alice"]) as api:
            wait_until_sync(lambda: len(api.history(type="a-h-G", limit=10)["events"]) == 3,
                            "the three markers stored")
            with pytest.raises(ApiError) as refused:
                api.history(bbox=box)
            assert refused.value.status == 400 and "antimeridian=true" in refused.value.detail
            with pytest.raises(ApiError):
                api.tracks(bbox=box)
            crossing = api.history(bbox=box, antimeridian=True)
            assert {e["uid"] for e in crossing["events"]} == {"east-of-dateline", "west-of-dateline"}
            picture = api.tracks(bbox=box, antimeridian=True)
            assert {t["uid"] for t in picture} == {"east-of-dateline", "west-of-dateline"}
            # An ordinary box is unchanged.
            assert {e["uid"] for e in api.history(bbox=(-10, -20, 10, -10))["events"]} == {"greenwich"}

    await asyncio.to_thread(across)
