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
from rallypoint.routing.directory import Directory
from rallypoint.services.missions import MissionService
from rallypoint.storage.sqlite.missions import SqliteMissionStore
from rallypoint.web.context import RequestIdentity
from rallypoint.web.marti.missions import MissionsFeature

HASH = "ef" * 32
GROUPS = {"alice": {"Red"}, "bob": {"Red"}, "eve": {"Blue"}}


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

    async def identify(self, conn: HTTPConnection) -> RequestIdentity | None:
        name = conn.headers.get("x-user", "")
        if name == "revoked":
            return None
        groups = frozenset(GROUPS.get(name, {"__ANON__"}))
        return RequestIdentity(principal=name or None, write_groups=groups, read_groups=groups)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Ctx]]:
    ctx = Ctx()
    service = MissionService(SqliteMissionStore(tmp_path / "missions.db"), Directory(), ctx.clock)
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
