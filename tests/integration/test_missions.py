"""Data Sync against the real server: HTTPS Mission API with client certificates plus TLS CoT streams."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from rallypoint.model.cot import CotEvent
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess

API = "/Marti/api/missions"


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    groups = {"red1": ["Red"], "red2": ["Red"], "red3": ["Red"], "blue1": ["Blue"], "blue2": ["Blue"]}
    with serve_with_groups(data_dir, groups) as proc:
        yield proc


class User:
    """One person: an HTTPS client and a TLS CoT stream sharing a certificate."""

    def __init__(self, name: str, http: httpx.AsyncClient, stream: CotClient) -> None:
        self.name = name
        self.uid = f"uid-{name}"
        self.http = http
        self.stream = stream


@pytest.fixture
async def users(group_server: ServerProcess, tmp_path: Path) -> AsyncIterator[dict[str, User]]:
    made: dict[str, User] = {}
    base = f"https://127.0.0.1:{group_server.ports['api']}"
    try:
        for name in ("red1", "red2", "red3", "blue1", "blue2"):
            ctx = client_context(group_server, name, tmp_path)
            stream = await CotClient.connect(group_server.ports["tls"], ssl_context=ctx)
            http = httpx.AsyncClient(base_url=base, verify=ctx, timeout=10)
            made[name] = User(name, http, stream)
            await stream.send(sa(f"uid-{name}", name.upper()))
        # Each SA reached a peer in its group: every stream is bound to its uid.
        await made["red2"].stream.wait_uid("uid-red1")
        await made["red1"].stream.wait_uid("uid-red3")
        await made["red1"].stream.wait_uid("uid-red2")
        await made["blue2"].stream.wait_uid("uid-blue1")
        yield made
    finally:
        for user in made.values():
            await user.http.aclose()
            await user.stream.close()


async def _upload(user: User, name: str, data: bytes) -> str:
    """Store a file through the Marti upload endpoint (it belongs to the uploader's groups)."""
    resp = await user.http.post("/Marti/sync/upload", params={"name": name, "creatorUid": user.uid},
                                files={"assetfile": (name, data)})
    assert resp.status_code == 200, resp.text
    digest = resp.json()["Hash"]
    assert digest == hashlib.sha256(data).hexdigest()
    return str(digest)


def _mission(event: CotEvent, kind: str) -> bool:
    return f'type="{kind}"'.encode() in event.detail.xml and b'name="Op"' in event.detail.xml


async def _eventually_get(user: User, path: str, predicate: object, timeout: float = 5.0) -> httpx.Response:
    """GET until ``predicate(response)`` holds (the mission CoT write is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        resp = await user.http.get(path)
        if predicate(resp):  # type: ignore[operator]
            return resp
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met; last answer {resp.status_code} {resp.text[:500]}")
        await user.stream.barrier(user.stream)


async def test_data_sync_flow(users: dict[str, User]) -> None:
    red1, red2, red3, blue1 = users["red1"], users["red2"], users["red3"], users["blue1"]
    HASH = await _upload(red1, "notes.txt", b"the plan")

    created = await red1.http.put(f"{API}/Op", params={"creatorUid": red1.uid, "description": "test op"})
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["version"] == "3" and doc["type"] == "Mission"
    mission = doc["data"][0]
    assert mission["name"] == "Op" and mission["groups"] == ["Red"] and mission["creatorUid"] == red1.uid
    assert mission["token"] and mission["role"]["type"] == "MISSION_OWNER"
    await red2.stream.wait_for(lambda e: e.type == "t-x-m-n" and _mission(e, "CREATE"))

    sub = await red2.http.put(f"{API}/Op/subscription", params={"uid": red2.uid})
    assert sub.status_code == 201, sub.text
    sub_doc = sub.json()
    assert sub_doc["type"] == "com.bbn.marti.sync.model.MissionSubscription"
    assert sub_doc["data"]["clientUid"] == red2.uid and len(sub_doc["data"]["token"]) >= 22
    assert sub_doc["data"]["role"]["type"] == "MISSION_SUBSCRIBER"
    assert "MISSION_WRITE" in sub_doc["data"]["role"]["permissions"]

    added = await red1.http.put(f"{API}/Op/contents", params={"creatorUid": red1.uid},
                                json={"hashes": [HASH], "uids": ["uid-red3"]})
    assert added.status_code == 200, added.text
    assert [(c["data"]["hash"], c["data"]["name"]) for c in added.json()["data"][0]["contents"]] == [
        (HASH, "notes.txt")]
    change = await red2.stream.wait_for(lambda e: e.type == "t-x-m-c" and _mission(e, "CHANGE"))
    assert HASH.encode() in change.detail.xml and b"<type>ADD_CONTENT</type>" in change.detail.xml

    # CoT addressed to the mission reaches subscribers only, and joins the mission.
    await red1.stream.send(cot("mission-marker", "a-h-G", detail='<marti><dest mission="Op"/></marti>'))
    got = await red2.stream.wait_uid("mission-marker")
    assert got.type == "a-h-G"
    await red3.stream.barrier(red1.stream)
    assert not red3.stream.has(lambda e: e.uid == "mission-marker")
    listed = await _eventually_get(
        red3, f"{API}/Op",
        lambda r: r.status_code == 200 and "mission-marker" in [u["data"] for u in r.json()["data"][0]["uids"]],
    )
    uids = {u["data"]: u for u in listed.json()["data"][0]["uids"]}
    assert uids["mission-marker"]["details"]["type"] == "a-h-G"
    cot_xml = (await red3.http.get(f"{API}/Op/cot")).text
    assert cot_xml.count("<event ") == 2 and 'uid="mission-marker"' in cot_xml and "<marti" not in cot_xml
    changes = (await red2.http.get(f"{API}/Op/changes")).json()["data"]
    kinds = [(c["type"], c.get("contentUid"), c.get("contentResource", {}).get("hash")) for c in changes]
    assert kinds[0][0] == "CREATE_MISSION"
    assert ("ADD_CONTENT", None, HASH) in kinds and ("ADD_CONTENT", "mission-marker", None) in kinds
    by_guid = await red2.http.get(f"{API}/guid/{mission['guid']}")
    assert by_guid.status_code == 200 and by_guid.json()["data"][0]["name"] == "Op"
    with_changes = (await red2.http.get(f"{API}/Op", params={"changes": "true", "logs": "true"})).json()["data"][0]
    assert [c["type"] for c in with_changes["missionChanges"]] == [c["type"] for c in changes]
    assert with_changes["logs"] == []

    # Keywords: set by a writer, seen by every reader of the mission, cleared again.
    kw = await red2.http.put(f"{API}/Op/keywords", params={"creatorUid": red2.uid}, json=["recon", "night"])
    assert kw.status_code == 200 and kw.json()["data"][0]["keywords"] == ["recon", "night"]
    await red3.stream.wait_for(lambda e: e.type == "t-x-m-c" and _mission(e, "KEYWORD"))
    assert (await red3.http.get(f"{API}/Op")).json()["data"][0]["keywords"] == ["recon", "night"]
    assert (await red2.http.delete(f"{API}/Op/keywords/night", params={"creatorUid": red2.uid})).json()[
        "data"][0]["keywords"] == ["recon"]
    assert (await red2.http.delete(f"{API}/Op/keywords", params={"creatorUid": red2.uid})).status_code == 200
    assert (await red3.http.get(f"{API}/Op")).json()["data"][0]["keywords"] == []

    # A user in another group learns nothing and can do nothing.
    assert [m["name"] for m in (await blue1.http.get(API)).json()["data"]] == []
    assert (await blue1.http.get(f"{API}/Op")).status_code == 404
    assert (await blue1.http.get(f"{API}/guid/{mission['guid']}")).status_code == 404
    assert (await blue1.http.put(f"{API}/Op/subscription", params={"uid": blue1.uid})).status_code == 404
    assert (await blue1.http.put(f"{API}/Op/contents", params={"creatorUid": blue1.uid},
                                 json={"hashes": [HASH]})).status_code == 404
    assert (await blue1.http.delete(f"{API}/Op", params={"creatorUid": blue1.uid})).status_code == 404
    await blue1.stream.send(cot("blue-marker", "a-h-G", detail='<marti><dest mission="Op"/></marti>'))
    # Ordered barriers: blue1's event was routed before blue2 saw the marker, and anything offered
    # to red2 then arrives before red1's later marker.
    await users["blue2"].stream.barrier(blue1.stream)
    await red2.stream.barrier(red1.stream)
    assert not red2.stream.has(lambda e: e.uid == "blue-marker")
    assert not blue1.stream.has(lambda e: e.type.startswith("t-x-m"))

    # Invitations reach the invitee.
    invited = await red1.http.put(f"{API}/Op/invite/clientUid/{red3.uid}", params={"creatorUid": red1.uid})
    assert invited.status_code == 200, invited.text
    await red3.stream.wait_for(lambda e: e.type == "t-x-m-i" and _mission(e, "INVITE"))

    # Only the owner deletes; subscribers are told.
    assert (await red2.http.delete(f"{API}/Op", params={"creatorUid": red2.uid})).status_code == 403
    deleted = await red1.http.delete(f"{API}/Op", params={"creatorUid": red1.uid})
    assert deleted.status_code == 200, deleted.text
    await red2.stream.wait_for(lambda e: e.type == "t-x-m-d" and _mission(e, "DELETE"))
    assert (await red2.http.get(f"{API}/Op")).status_code == 404


async def test_access_is_bound_to_identity_groups_and_subscription(users: dict[str, User]) -> None:
    red1, red2, red3, blue1 = users["red1"], users["red2"], users["red3"], users["blue1"]
    closed = await red1.http.put(f"{API}/Closed", params={"creatorUid": red1.uid, "inviteOnly": "true"})
    assert closed.status_code == 201, closed.text
    invited = await red1.http.put(f"{API}/Closed/invite/clientUid/{red3.uid}",
                                  params={"creatorUid": red1.uid, "role": "MISSION_OWNER"})
    assert invited.status_code == 200, invited.text

    # red2 is in the mission's group but red3's uid is bound to red3's certificate: no hijack.
    for params in ({"uid": red3.uid}, {"clientUid": red3.uid}, {"creatorUid": red3.uid}):
        stolen = await red2.http.put(f"{API}/Closed/subscription", params=params)
        assert stolen.status_code == 403, (params, stolen.text)
    assert (await red2.http.put(f"{API}/Closed/subscription", params={"uid": red2.uid})).status_code == 403
    mine = await red3.http.put(f"{API}/Closed/subscription", params={"uid": red3.uid})
    assert mine.status_code == 201 and mine.json()["data"]["role"]["type"] == "MISSION_OWNER"
    roles = (await red1.http.get(f"{API}/Closed/subscriptions/roles")).json()["data"]
    assert {(r["clientUid"], r["username"]) for r in roles} == {(red1.uid, "red1"), (red3.uid, "red3")}

    # A Blue package cannot be added to a Red mission, and nothing about it leaks; nor can a made-up hash.
    secret = await _upload(blue1, "blue-plan.txt", b"blue only")
    own = await _upload(red1, "red-plan.txt", b"red only")
    await red1.http.put(f"{API}/Op", params={"creatorUid": red1.uid})
    for digest in (secret, "0123456789abcdef" * 4):
        refused = await red1.http.put(f"{API}/Op/contents", params={"creatorUid": red1.uid},
                                      json={"hashes": [digest]})
        assert refused.status_code == 404 and "blue-plan" not in refused.text
    listed = (await red1.http.get(f"{API}/Op", params={"changes": "true"})).json()["data"][0]
    assert listed["contents"] == [] and "blue-plan" not in str(listed)

    # A group member that has not subscribed reads but does not write.
    assert (await red2.http.get(f"{API}/Op")).status_code == 200
    body = {"hashes": [own]}
    assert (await red2.http.put(f"{API}/Op/contents", params={"creatorUid": red2.uid}, json=body)).status_code == 403
    assert (await red2.http.put(f"{API}/Op/keywords", params={"creatorUid": red2.uid}, json=["x"])).status_code == 403
    assert (await red2.http.put(f"{API}/Op/subscription", params={"uid": red2.uid})).status_code == 201
    written = await red2.http.put(f"{API}/Op/contents", params={"creatorUid": red2.uid}, json=body)
    assert written.status_code == 200 and [c["data"]["name"] for c in written.json()["data"][0]["contents"]] == [
        "red-plan.txt"]
