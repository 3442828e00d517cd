"""``/api/packages`` and ``/api/missions``: shapes, group filtering, 404 for the unreadable."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from rallypoint.model.mission import CreateRequest, MissionContent
from rallypoint.services.datapackages import DataPackageService, Upload
from rallypoint.services.missions import MissionService
from rallypoint.services.missions_access import Caller
from rallypoint.storage.files import FileBlobStore
from rallypoint.storage.sqlite.missions import SqliteMissionStore
from rallypoint.storage.sqlite.packages import SqlitePackageStore
from tests.unit.web.test_api_harness import Harness, harness_fixture  # noqa: F401

CREATED_ISO = "2023-11-14T22:13:20.000Z"  # the harness clock's NOW


@pytest.fixture(name="catalog")
def catalog_fixture(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    packages = DataPackageService(FileBlobStore(tmp_path / "blobs"), SqlitePackageStore(tmp_path / "packages.db"),
                                  h.clock)
    missions = SqliteMissionStore(tmp_path / "missions.db")

    async def describe(digest: str, read_groups: frozenset[str]) -> MissionContent | None:
        record = await packages.find(digest, read_groups)
        return None if record is None else MissionContent(
            hash=record.hash, creator_uid="", timestamp=record.submitted_ms, name=record.name, size=record.size)

    h.rebuild(packages=packages, missions=MissionService(missions, h.ctx.directory, h.clock, describe=describe))
    h.add_user("alice", {"A"})
    h.add_user("bob", {"B"})
    with h.http:
        yield h
    asyncio.run(packages.close())
    asyncio.run(missions.close())
    asyncio.run(h.users.close())
    asyncio.run(h.api.close())


def store_package(h: Harness, data: bytes, *, submitter: str, groups: set[str], tool: str = "public",
                  keywords: tuple[str, ...] = ("missionpackage",)) -> str:
    service = h.ctx.packages
    assert service is not None
    writer = service.spool()
    writer.write(data)
    record, _ = asyncio.run(service.store(writer, Upload(
        filename="notes.txt", submitter=submitter, groups=frozenset(groups), creator_uid="ANDROID-1",
        mime="text/plain", keywords=keywords, tool=tool,
    )))
    return record.hash


def make_mission(h: Harness, name: str, principal: str, groups: set[str], *, hashes: list[str],
                 uids: list[str]) -> None:
    service = h.ctx.missions
    assert service is not None
    caller = Caller(principal=principal, write_groups=frozenset(groups), read_groups=frozenset(groups),
                    client_uid=f"uid-{principal}")
    asyncio.run(service.create(caller, CreateRequest(name=name, description="the op", keywords=("k1",))))
    if hashes or uids:
        asyncio.run(service.add(caller, name, hashes, uids))


def test_packages_are_listed_for_readers_of_their_groups_only(catalog: Harness) -> None:
    mine = store_package(catalog, b"alpha", submitter="alice", groups={"A"})
    theirs = store_package(catalog, b"bravo", submitter="bob", groups={"B"})
    alice, bob = catalog.bearer("alice"), catalog.bearer("bob")

    listed = catalog.http.get("/api/packages", headers=alice)
    assert listed.status_code == 200, listed.text
    assert listed.json() == [{
        "hash": mine, "name": "notes.txt", "size": 5, "mime": "text/plain", "keywords": ["missionpackage"],
        "tool": "public", "submitter": "alice", "creator_uid": "ANDROID-1", "submitted": CREATED_ISO,
        "groups": ["A"], "download_url": f"http://127.0.0.1/Marti/sync/content?hash={mine}",
    }]
    assert mine == hashlib.sha256(b"alpha").hexdigest()
    assert [p["hash"] for p in catalog.http.get("/api/packages", headers=bob).json()] == [theirs]
    # Anonymous callers read __ANON__ only.
    assert catalog.http.get("/api/packages").json() == []

    one = catalog.http.get(f"/api/packages/{mine}", headers=alice)
    assert one.status_code == 200 and one.json()["hash"] == mine
    for path in (f"/api/packages/{theirs}", "/api/packages/not-a-hash", "/api/packages/" + "0" * 64):
        missing = catalog.http.get(path, headers=alice)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found", path


def test_package_filters_follow_the_marti_search_rules(catalog: Harness) -> None:
    public = store_package(catalog, b"one", submitter="alice", groups={"A"}, keywords=("maps",))
    private = store_package(catalog, b"two", submitter="carol", groups={"A"}, tool="private")
    alice = catalog.bearer("alice")

    def hashes(**params: str) -> list[str]:
        answer = catalog.http.get("/api/packages", params=params, headers=alice)
        assert answer.status_code == 200, answer.text
        return [p["hash"] for p in answer.json()]

    # Someone else's private package stays hidden, also when asking for private packages.
    assert private not in hashes()
    assert hashes(keyword="maps") == [public]
    assert hashes(keyword="nothing") == []
    assert hashes(tool="private") == []
    own = store_package(catalog, b"three", submitter="alice", groups={"A"}, tool="private")
    assert hashes() == [public, own] and hashes(tool="private") == [own]
    bad = catalog.http.get("/api/packages", params={"tool": "secret"}, headers=alice)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_parameter"
    assert catalog.http.get("/api/packages", params={"keywords": "x"}, headers=alice).status_code == 400


def test_missions_are_visible_to_readers_of_their_groups_only(catalog: Harness) -> None:
    digest = store_package(catalog, b"charlie", submitter="alice", groups={"A"})
    make_mission(catalog, "Op", "alice", {"A"}, hashes=[digest], uids=["uid-1", "uid-2"])
    make_mission(catalog, "Other", "bob", {"B"}, hashes=[], uids=[])
    alice, bob = catalog.bearer("alice"), catalog.bearer("bob")

    listed = catalog.http.get("/api/missions", headers=alice)
    assert listed.status_code == 200, listed.text
    [op] = listed.json()
    assert op["guid"]
    assert {k: v for k, v in op.items() if k != "guid"} == {
        "name": "Op", "description": "the op", "tool": "public", "creator_uid": "uid-alice",
        "created": CREATED_ISO, "groups": ["A"], "keywords": ["k1"], "contents_count": 1, "uids_count": 2,
    }
    assert [m["name"] for m in catalog.http.get("/api/missions", headers=bob).json()] == ["Other"]

    detail = catalog.http.get("/api/missions/Op", headers=alice)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["contents"] == [{"hash": digest, "name": "notes.txt"}]
    assert sorted(body["uids"]) == ["uid-1", "uid-2"]
    assert body["subscribers"] == 1  # the creator, subscribed as owner on creation
    assert body["role"] == "MISSION_OWNER"  # the creator's principal, whatever device it calls from

    for path, headers in (("/api/missions/Op", bob), ("/api/missions/Nope", alice), ("/api/missions/Op", {})):
        hidden = catalog.http.get(path, headers=headers)
        assert hidden.status_code == 404 and hidden.json()["error"] == "not_found", path


def test_without_the_services_the_endpoints_say_unavailable(harness: Harness) -> None:
    assert harness.ctx.packages is None and harness.ctx.missions is None
    for path in ("/api/packages", "/api/missions", "/api/missions/Op", "/api/packages/" + "0" * 64):
        answer = harness.http.get(path)
        assert answer.status_code == 503 and answer.json()["error"] == "unavailable", path


def test_openapi_describes_the_catalog(catalog: Harness) -> None:
    doc = catalog.http.get("/api/openapi.json").json()
    assert doc["paths"]["/api/packages"]["get"]["operationId"] == "listPackages"
    assert doc["paths"]["/api/missions/{name}"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/MissionDetail"}
    assert "download_url" in doc["components"]["schemas"]["PackageInfo"]["required"]
