"""Package upload/download/delete and mission changes through the native API, with the service rules."""

from __future__ import annotations

import io
import zipfile

from tests.unit.web.test_api_catalog import catalog_fixture, store_package  # noqa: F401
from tests.unit.web.test_api_harness import Harness


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_upload_raw_and_multipart_then_download_by_group(catalog: Harness) -> None:
    alice, bob = catalog.bearer("alice"), catalog.bearer("bob")
    raw = catalog.http.post("/api/packages", headers={**alice, "Content-Type": "text/plain"},
                            params={"name": "notes.txt", "keywords": "maps,night"}, content=b"rally at dawn")
    assert raw.status_code == 201, raw.text
    info = raw.json()
    assert (info["name"], info["mime"], info["submitter"], info["groups"], info["keywords"], info["created"]) == (
        "notes.txt", "text/plain", "alice", ["A"], ["maps", "night"], True)
    again = catalog.http.post("/api/packages", headers=alice, content=b"rally at dawn")
    assert again.status_code == 200 and again.json()["created"] is False

    archive = _zip({"a.txt": b"x"})
    multi = catalog.http.post("/api/packages", headers=alice, files={"assetfile": ("pack.zip", archive)})
    assert multi.status_code == 201, multi.text
    assert multi.json()["name"] == "pack.zip"

    got = catalog.http.get(f"/api/packages/{info['hash']}/content", headers=alice)
    assert got.status_code == 200 and got.content == b"rally at dawn"
    assert got.headers["content-type"].startswith("text/plain")
    hidden = catalog.http.get(f"/api/packages/{info['hash']}/content", headers=bob)
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    assert "package.upload" in catalog.auditor.actions()  # type: ignore[attr-defined]


def test_uploads_meet_the_marti_checks(catalog: Harness) -> None:
    alice = catalog.bearer("alice")
    evil = _zip({"../../etc/passwd": b"root"})
    refused = catalog.http.post("/api/packages", headers=alice, content=evil, params={"name": "evil.zip"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"].startswith("zip")
    service = catalog.ctx.packages
    assert service is not None
    service.limits = type(service.limits)(max_upload_bytes=10)
    big = catalog.http.post("/api/packages", headers=alice, content=b"x" * 11)
    assert big.status_code == 413
    mismatch = catalog.http.post("/api/packages", headers=alice, content=b"abc", params={"hash": "0" * 64})
    assert mismatch.status_code == 400 and mismatch.json()["error"] == "hash_mismatch"
    nofile = catalog.http.post("/api/packages", headers=alice, data={"keywords": "x"}, files={"other": (None, "v")})
    assert nofile.status_code == 400 and nofile.json()["error"] == "missing_file"
    assert catalog.http.get("/api/packages", headers=alice).json() == []


def test_delete_by_submitter_or_admin_only(catalog: Harness) -> None:
    from rallypoint.security.users import Role

    catalog.add_user("carol", {"A"})
    catalog.add_user("root", {"A"}, role=Role.ADMIN)
    mine = store_package(catalog, b"alice's", submitter="alice", groups={"A"})
    other = store_package(catalog, b"carol's", submitter="carol", groups={"A"})
    alice, bob, root = catalog.bearer("alice"), catalog.bearer("bob"), catalog.bearer("root")
    assert catalog.http.delete(f"/api/packages/{mine}", headers=bob).status_code == 404  # other group
    refused = catalog.http.delete(f"/api/packages/{other}", headers=alice)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    done = catalog.http.delete(f"/api/packages/{mine}", headers=alice)
    assert done.status_code == 200 and done.json() == {"id": mine, "deleted": True}
    assert catalog.http.get(f"/api/packages/{mine}/content", headers=alice).status_code == 404
    assert catalog.http.delete(f"/api/packages/{mine}", headers=alice).status_code == 404
    assert catalog.http.delete(f"/api/packages/{other}", headers=root).status_code == 200
    assert catalog.http.get("/api/packages", headers=alice).json() == []


def test_mission_lifecycle_with_roles_and_notices(catalog: Harness) -> None:
    alice, bob = catalog.bearer("alice"), catalog.bearer("bob")
    catalog.add_user("dave", {"A"})
    dave = catalog.bearer("dave")
    device = catalog.connect("s-dave", "dev-dave", "DAVE", {"A"})
    digest = store_package(catalog, b"map", submitter="alice", groups={"A"})

    made = catalog.http.post("/api/missions", headers=alice, json={"name": "Op", "description": "d", "keywords": ["k"]})
    assert made.status_code == 201, made.text
    assert (made.json()["groups"], made.json()["creator_uid"], made.json()["role"]) == (
        ["A"], "rallypoint-api-alice", "MISSION_OWNER")
    assert catalog.http.post("/api/missions", headers=alice, json={"name": "Op"}).status_code == 200
    taken = catalog.http.post("/api/missions", headers=bob, json={"name": "Op"})
    assert taken.status_code == 409
    assert catalog.http.post("/api/missions", headers=alice, json={"name": "X", "groups": ["B"]}).status_code == 403

    # dave is in the group but not subscribed: reads, cannot write.
    body = {"hashes": [digest], "uids": ["marker-1"]}
    assert catalog.http.post("/api/missions/Op/contents", headers=dave, json=body).status_code == 403
    sub = catalog.http.put("/api/missions/Op/subscription", headers=dave, json={"uid": "dev-dave"})
    assert sub.status_code == 200, sub.text
    assert (sub.json()["uid"], sub.json()["role"]) == ("dev-dave", "MISSION_SUBSCRIBER") and sub.json()["token"]
    subs = catalog.http.get("/api/missions/Op/subscriptions", headers=alice).json()
    assert {s["uid"] for s in subs} == {"rallypoint-api-alice", "dev-dave"} and all(s["token"] is None for s in subs)

    added = catalog.http.post("/api/missions/Op/contents", headers=alice, json=body)
    assert added.status_code == 200, added.text
    assert sorted((c["content_hash"] or c["content_uid"]) for c in added.json()) == sorted([digest, "marker-1"])
    # The subscribed device heard of the change as a mission notice.
    assert any(e.event.type.startswith("t-x-m-c") for e in device.received), [e.event.type for e in device.received]
    detail = catalog.http.get("/api/missions/Op", headers=dave).json()
    assert detail["contents"] == [{"hash": digest, "name": "notes.txt"}] and detail["uids"] == ["marker-1"]

    removed = catalog.http.delete(f"/api/missions/Op/contents/{digest}", headers=dave, params={"uid": "dev-dave"})
    assert removed.status_code == 200, removed.text
    assert catalog.http.delete(f"/api/missions/Op/contents/{digest}", headers=alice).status_code == 404
    assert catalog.http.delete("/api/missions/Op/uids/marker-1", headers=alice).status_code == 200
    log = catalog.http.get("/api/missions/Op/changes", headers=dave).json()
    assert [c["type"] for c in log] == ["CREATE_MISSION", "ADD_CONTENT", "ADD_CONTENT", "REMOVE_CONTENT",
                                        "REMOVE_CONTENT"]

    # Only the owner (or an admin) deletes; other groups see nothing.
    assert catalog.http.delete("/api/missions/Op", headers=bob).status_code == 404
    assert catalog.http.put("/api/missions/Op/subscription", headers=bob, json={}).status_code == 404
    assert catalog.http.delete("/api/missions/Op", headers=dave).status_code == 403
    gone = catalog.http.delete("/api/missions/Op/subscription", headers=dave, params={"uid": "dev-dave"})
    assert gone.json() == {"id": "dev-dave", "deleted": True}
    assert catalog.http.delete("/api/missions/Op", headers=alice).json() == {"id": "Op", "deleted": True}
    assert catalog.http.get("/api/missions/Op", headers=alice).status_code == 404


def test_mission_text_that_cot_cannot_carry_is_refused_before_anything_is_stored(catalog: Harness) -> None:
    alice = catalog.bearer("alice")
    for body in ({"name": "a", "description": "\x00"}, {"name": "b", "tool": "\x01"}, {"name": "c", "uid": "\x02"},
                 {"name": "d", "keywords": ["\x0b"]}):
        answer = catalog.http.post("/api/missions", headers=alice, json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert catalog.http.get("/api/missions", headers=alice).json() == []
    assert catalog.http.post("/api/missions", headers=alice, json={"name": "ok"}).status_code == 201
    bad_uid = catalog.http.delete("/api/missions/ok/uids/a%01b", headers=alice)
    assert bad_uid.status_code == 400 and bad_uid.json()["error"] == "bad_parameter"
