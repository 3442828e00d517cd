"""Mission API over HTTP (Starlette test client): TAK JSON shapes and status codes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient

from rallypoint.clock import ManualClock
from rallypoint.config import Settings
from rallypoint.model.mission import MissionContent
from rallypoint.routing.directory import Directory
from rallypoint.security.policy import IdentityPolicy
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.missions import MissionService
from rallypoint.storage.sqlite.missions import SqliteMissionStore
from rallypoint.web.context import RequestIdentity
from rallypoint.web.marti.missions import MissionsFeature

HASH = "ef" * 32
BLUE_HASH = "be" * 32
GROUPS = {"alice": {"Red"}, "bob": {"Red"}, "eve": {"Blue"}}
# Uids bound to certificates (as a stream's first SA binds them).
BOUND = {"alice": ["u-a"], "bob": ["u-b"]}


async def describe(digest: str, read_groups: frozenset[str]) -> MissionContent | None:
    groups = {HASH: {"Red"}, BLUE_HASH: {"Blue"}}.get(digest)
    if groups is None or read_groups.isdisjoint(groups):
        return None
    return MissionContent(hash=digest, creator_uid="", timestamp=0, name=f"{digest[:4]}.zip", size=4)


class Auditor:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str]] = []

    def record(self, actor: str, action: str, target: str, detail: dict[str, str] | None = None) -> None:
        self.entries.append((actor, action, target))


class Ctx:
    """The parts of WebContext the mission routes use; the caller is named by an ``X-User`` header."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.clock = ManualClock()
        self.auditor = Auditor()
        self.identity = IdentityPolicy(BOUND)
        self.metrics = ServerMetrics()

    async def identify(self, conn: HTTPConnection) -> RequestIdentity | None:
        name = conn.headers.get("x-user", "")
        if name == "revoked":
            return None
        groups = frozenset(GROUPS.get(name, {"__ANON__"}))
        return RequestIdentity(principal=name or None, write_groups=groups, read_groups=groups)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Ctx]]:
    ctx = Ctx()
    service = MissionService(SqliteMissionStore(tmp_path / "missions.db"), Directory(), ctx.clock, describe=describe)
    feature = MissionsFeature(ctx, service)  # type: ignore[arg-type]
    with TestClient(Starlette(routes=list(feature.routes))) as client:
        yield client, ctx
    asyncio.run(service.store.close())


def _as(user: str) -> dict[str, str]:
    return {"X-User": user}


def test_create_get_and_list_in_tak_shapes(api: tuple[TestClient, Any]) -> None:
    client, ctx = api
    resp = client.put("/Marti/api/missions/Op One", params={"creatorUid": "u-a", "tool": "public",
                                                            "defaultRole": "MISSION_READONLY_SUBSCRIBER"},
                      headers=_as("alice"))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["version"] == "3" and body["type"] == "Mission" and body["nodeId"] == ctx.settings.node_id
    m = body["data"][0]
    assert m["name"] == "Op One" and m["defaultRole"]["type"] == "MISSION_READONLY_SUBSCRIBER"
    assert m["defaultRole"]["permissions"] == ["MISSION_READ"]
    assert m["createTime"].endswith("Z") and m["passwordProtected"] is False and m["groups"] == ["Red"]
    assert ("alice", "mission.create", "Op One") in ctx.auditor.entries
    assert client.put("/Marti/api/missions/Op One", params={"creatorUid": "u-a"},
                      headers=_as("alice")).status_code == 200
    assert client.put("/Marti/api/missions/Op One", headers=_as("bob")).status_code == 409
    listed = client.get("/Marti/api/missions", headers=_as("bob")).json()["data"]
    assert [x["name"] for x in listed] == ["Op One"] and "token" not in listed[0]
    assert client.get("/Marti/api/missions", headers=_as("eve")).json()["data"] == []
    assert client.get("/Marti/api/missions/Op One", headers=_as("eve")).status_code == 404
    assert client.get("/Marti/api/missions", headers=_as("revoked")).status_code == 403


def test_status_codes_for_roles_and_bad_input(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    client.put("/Marti/api/missions/Op", params={"creatorUid": "u-a", "defaultRole": "READONLY"},
               headers=_as("alice"))
    sub = client.put("/Marti/api/missions/Op/subscription", params={"uid": "u-b"}, headers=_as("bob")).json()
    assert sub["data"]["role"]["type"] == "MISSION_READONLY_SUBSCRIBER"
    assert client.put("/Marti/api/missions/Op/contents", params={"creatorUid": "u-b"}, json={"hashes": [HASH]},
                      headers=_as("bob")).status_code == 403
    assert client.put("/Marti/api/missions/Op/role", params={"clientUid": "u-b", "role": "MISSION_SUBSCRIBER"},
                      headers=_as("bob")).status_code == 403
    assert client.put("/Marti/api/missions/Op/role", params={"clientUid": "u-b", "role": "MISSION_SUBSCRIBER"},
                      headers=_as("alice")).status_code == 200
    ok = client.put("/Marti/api/missions/Op/contents", params={"creatorUid": "u-b"}, json={"hashes": [HASH]},
                    headers=_as("bob"))
    assert ok.status_code == 200 and ok.json()["data"][0]["contents"][0]["data"]["hash"] == HASH
    assert client.put("/Marti/api/missions/Op/contents", params={"creatorUid": "u-b"}, json={"hashes": ["xyz"]},
                      headers=_as("bob")).status_code == 400
    assert client.put("/Marti/api/missions/Op/contents", params={"creatorUid": "u-b"}, content=b"{not json",
                      headers=_as("bob")).status_code == 400
    big = b'{"uids": ["' + b"x" * 70_000 + b'"]}'
    assert client.put("/Marti/api/missions/Op/contents", content=big, headers=_as("bob")).status_code == 413
    changes = client.get("/Marti/api/missions/Op/changes", headers=_as("bob")).json()
    assert changes["type"] == "MissionChange"
    assert [c["type"] for c in changes["data"]] == ["CREATE_MISSION", "ADD_CONTENT"]
    assert changes["data"][1]["contentResource"]["hash"] == HASH
    roles = client.get("/Marti/api/missions/Op/subscriptions/roles", headers=_as("bob")).json()["data"]
    assert {r["clientUid"] for r in roles} == {"u-a", "u-b"} and all("token" not in r for r in roles)
    assert client.delete("/Marti/api/missions/Op/contents", params={"hash": HASH, "creatorUid": "u-b"},
                         headers=_as("bob")).json()["data"][0]["contents"] == []
    assert client.put("/Marti/api/missions/Op/invite/nobody/x", headers=_as("alice")).status_code == 400
    assert client.delete("/Marti/api/missions/Op", headers=_as("bob")).status_code == 403
    assert client.delete("/Marti/api/missions/Op", headers=_as("alice")).status_code == 200
    assert client.get("/Marti/api/missions/Op", headers=_as("alice")).status_code == 404


def _rejected(ctx: Ctx, reason: str) -> float:
    return ctx.metrics.rejected.labels(reason, "http")._value.get()  # type: ignore[no-any-return]


def test_a_uid_bound_to_another_identity_is_refused(api: tuple[TestClient, Any]) -> None:
    client, ctx = api
    client.put("/Marti/api/missions/Op", params={"creatorUid": "u-a", "inviteOnly": "true"}, headers=_as("alice"))
    assert client.put("/Marti/api/missions/Op/invite/clientUid/u-b", params={"creatorUid": "u-a",
                      "role": "MISSION_OWNER"}, headers=_as("alice")).status_code == 200
    # Alice names Bob's bound uid in every place a caller's uid is read: refused and counted.
    for params in ({"uid": "u-b"}, {"creatorUid": "u-b"}, {"clientUid": "u-b"}):
        resp = client.put("/Marti/api/missions/Op/subscription", params=params, headers=_as("alice"))
        assert resp.status_code == 403, params
    assert _rejected(ctx, "spoofed_uid") == 3
    # Naming another client where the route means "that client" is not a claim.
    assert client.put("/Marti/api/missions/Op/invite/clientUid/u-c", params={"creatorUid": "u-a"},
                      headers=_as("alice")).status_code == 200
    # Bob, who holds u-b, takes his invitation.
    sub = client.put("/Marti/api/missions/Op/subscription", params={"uid": "u-b"}, headers=_as("bob"))
    assert sub.status_code == 201 and sub.json()["data"]["role"]["type"] == "MISSION_OWNER"
    assert client.put("/Marti/api/missions/Op/role", params={"clientUid": "u-b", "role": "MISSION_SUBSCRIBER",
                      "creatorUid": "u-a"}, headers=_as("alice")).status_code == 200
    # A uid no one holds may be used, but it proves nothing: Bob does not get the invitation sent to u-c.
    unbound = client.put("/Marti/api/missions/Op/subscription", params={"uid": "u-c"}, headers=_as("bob"))
    assert unbound.status_code == 403 and "invite-only" in unbound.text


def test_contents_must_be_stored_packages_the_caller_reads(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    client.put("/Marti/api/missions/Op", params={"creatorUid": "u-a"}, headers=_as("alice"))
    for digest in (BLUE_HASH, "00" * 32):
        resp = client.put("/Marti/api/missions/Op/contents", params={"creatorUid": "u-a"},
                          json={"hashes": [digest]}, headers=_as("alice"))
        assert resp.status_code == 404 and "blue" not in resp.text
    assert client.get("/Marti/api/missions/Op", headers=_as("alice")).json()["data"][0]["contents"] == []
    ok = client.put("/Marti/api/missions/Op/contents", params={"creatorUid": "u-a"}, json={"hashes": [HASH]},
                    headers=_as("alice"))
    assert ok.status_code == 200 and ok.json()["data"][0]["contents"][0]["data"]["name"] == "efef.zip"


def test_unsubscribed_member_reads_but_does_not_write(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    client.put("/Marti/api/missions/Op", params={"creatorUid": "u-a"}, headers=_as("alice"))
    assert client.get("/Marti/api/missions/Op", headers=_as("bob")).status_code == 200
    assert client.put("/Marti/api/missions/Op/contents", params={"creatorUid": "u-b"}, json={"uids": ["m"]},
                      headers=_as("bob")).status_code == 403
    client.put("/Marti/api/missions/Op/subscription", params={"uid": "u-b"}, headers=_as("bob"))
    assert client.put("/Marti/api/missions/Op/contents", params={"creatorUid": "u-b"}, json={"uids": ["m"]},
                      headers=_as("bob")).status_code == 200


def test_get_with_changes_and_logs(api: tuple[TestClient, Any]) -> None:
    client, ctx = api
    client.put("/Marti/api/missions/Op", params={"creatorUid": "u-a"}, headers=_as("alice"))
    ctx.clock.advance(60)
    client.put("/Marti/api/missions/Op/contents", params={"creatorUid": "u-a"}, json={"hashes": [HASH]},
               headers=_as("alice"))
    plain = client.get("/Marti/api/missions/Op", headers=_as("bob")).json()["data"][0]
    assert "missionChanges" not in plain and "logs" not in plain
    full = client.get("/Marti/api/missions/Op", params={"changes": "true", "logs": "true"},
                      headers=_as("bob")).json()["data"][0]
    assert [c["type"] for c in full["missionChanges"]] == ["CREATE_MISSION", "ADD_CONTENT"]
    assert full["missionChanges"][1]["contentResource"]["name"] == "efef.zip" and full["logs"] == []
    recent = client.get("/Marti/api/missions/Op", params={"changes": "true", "secago": "30"},
                        headers=_as("bob")).json()["data"][0]
    assert [c["type"] for c in recent["missionChanges"]] == ["ADD_CONTENT"]
    guid = full["guid"]
    by_guid = client.get(f"/Marti/api/missions/guid/{guid}", params={"changes": "true"}, headers=_as("bob"))
    assert len(by_guid.json()["data"][0]["missionChanges"]) == 2


def test_keywords_endpoints(api: tuple[TestClient, Any]) -> None:
    client, _ = api
    client.put("/Marti/api/missions/Op", params={"creatorUid": "u-a", "keywords": "old"}, headers=_as("alice"))
    resp = client.put("/Marti/api/missions/Op/keywords", params={"creatorUid": "u-a"}, json=["alpha", "bravo"],
                      headers=_as("alice"))
    assert resp.status_code == 200 and resp.json()["data"][0]["keywords"] == ["alpha", "bravo"]
    assert client.get("/Marti/api/missions/Op", headers=_as("bob")).json()["data"][0]["keywords"] == ["alpha", "bravo"]
    assert client.put("/Marti/api/missions/Op/keywords", json=["x"], headers=_as("bob")).status_code == 403
    assert client.put("/Marti/api/missions/Op/keywords", json={"not": "a list"},
                      headers=_as("alice")).status_code == 400
    one = client.delete("/Marti/api/missions/Op/keywords/alpha", headers=_as("alice"))
    assert one.status_code == 200 and one.json()["data"][0]["keywords"] == ["bravo"]
    assert client.delete("/Marti/api/missions/Op/keywords/alpha", headers=_as("alice")).status_code == 400
    cleared = client.delete("/Marti/api/missions/Op/keywords", headers=_as("alice"))
    assert cleared.status_code == 200 and cleared.json()["data"][0]["keywords"] == []
    assert client.put("/Marti/api/missions/Op/keywords", json=["x"], headers=_as("eve")).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"creatorUid": "u\x01"},
        {"creatorUid": "u-x", "tool": "x\x02"},
        {"creatorUid": "u-x", "description": "bad \ufffe text"},
        {"creatorUid": "u-x", "chatRoom": "\x01"},
        {"creatorUid": "u-x", "classification": "\x1f"},
        {"creatorUid": "u-x", "description": "d" * 5000},
    ],
)
def test_text_xml_cannot_carry_is_400_and_nothing_is_created(
    api: tuple[TestClient, Any], params: dict[str, str]
) -> None:
    client, _ = api
    resp = client.put("/Marti/api/missions/Hostile", params=params)
    assert resp.status_code == 400, resp.text
    assert client.get("/Marti/api/missions/Hostile").status_code == 404
    # The service keeps working for well-formed requests.
    assert client.put("/Marti/api/missions/Fine", params={"creatorUid": "u-x"}).status_code == 201
