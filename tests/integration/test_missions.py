"""Data Sync against the real server: HTTPS Mission API with client certificates plus TLS CoT streams."""

from __future__ import annotations

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

HASH = "0123456789abcdef" * 4
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
    assert [c["data"]["hash"] for c in added.json()["data"][0]["contents"]] == [HASH]
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
