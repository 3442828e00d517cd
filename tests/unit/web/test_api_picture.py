"""Clients, tracks, history and emergencies are filtered by the caller's read groups."""

from __future__ import annotations

import asyncio

from rallypoint.model.cot import Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.security.users import Role
from rallypoint.storage.base import stored_event_from_cot
from tests.unit.web.test_api_harness import NOW, Harness, harness_fixture, marker  # noqa: F401


def _two_groups(h: Harness) -> tuple[dict[str, str], dict[str, str]]:
    h.add_user("alice", {"A"})
    h.add_user("bob", {"B"})
    h.connect("s-a", "uid-a", "ALPHA", {"A"}, lat=10.0, lon=20.0)
    h.connect("s-b", "uid-b", "BRAVO", {"B"}, lat=-10.0, lon=-20.0)
    h.inject(marker("mark-a", lat=1.0, lon=2.0), "s-a", {"A"})
    h.inject(marker("mark-b", lat=1.0, lon=2.0), "s-b", {"B"})
    return h.bearer("alice"), h.bearer("bob")


def test_clients_only_from_readable_groups(harness: Harness) -> None:
    alice, bob = _two_groups(harness)
    a = harness.http.get("/api/clients", headers=alice).json()
    assert [c["uid"] for c in a] == ["uid-a"]
    assert a[0]["callsign"] == "ALPHA" and a[0]["position"] == {"lat": 10.0, "lon": 20.0, "hae": 5.0}
    assert a[0]["group"] == "Cyan" and a[0]["role"] == "Team Member" and a[0]["last_seen_ms"] == NOW
    assert [c["uid"] for c in harness.http.get("/api/clients", headers=bob).json()] == ["uid-b"]


def test_tracks_filtered_by_group_type_bbox_and_since(harness: Harness) -> None:
    alice, _ = _two_groups(harness)
    get = harness.http.get
    assert {t["uid"] for t in get("/api/tracks", headers=alice).json()} == {"uid-a", "mark-a"}
    assert [t["uid"] for t in get("/api/tracks?type=a-h", headers=alice).json()] == ["mark-a"]
    assert [t["uid"] for t in get("/api/tracks?bbox=19,9,21,11", headers=alice).json()] == ["uid-a"]
    assert get(f"/api/tracks?since={NOW + 1}", headers=alice).json() == []
    assert len(get("/api/tracks?since=2023-11-14T22:13:20Z", headers=alice).json()) == 2
    geo = get("/api/tracks?format=geojson&type=a-f", headers=alice)
    assert geo.headers["content-type"].startswith("application/geo+json")
    doc = geo.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["features"][0]["id"] == "uid-a" and doc["features"][0]["geometry"]["coordinates"] == [20.0, 10.0, 5.0]


def test_stale_items_are_not_tracks(harness: Harness) -> None:
    alice, _ = _two_groups(harness)
    harness.clock.advance(301)
    assert harness.http.get("/api/tracks", headers=alice).json() == []


def test_bad_query_parameters_are_400(harness: Harness) -> None:
    alice, _ = _two_groups(harness)
    for query in ("bbox=1,2,3", "bbox=a,b,c,d", "bbox=0,10,1,5", "since=yesterday", "since=2024-01-01T00:00:00",
                  "format=xml", "sinse=1", "type=a&type=b"):
        answer = harness.http.get(f"/api/tracks?{query}", headers=alice)
        assert answer.status_code == 400, query
        assert answer.json()["error"] == "bad_parameter"
    for query in ("limit=0", "limit=99999", "limit=x", "order=up"):
        assert harness.http.get(f"/api/history?{query}", headers=alice).status_code == 400, query


def _store(h: Harness, uid: str, *, groups: set[str], sender: str | None = None, time: int = NOW) -> None:
    event = make_event(uid=uid, type="a-f-G", how="m-g", time=time, start=time, stale=time + 60_000,
                       point=Point(1.0, 2.0, 0.0))
    asyncio.run(h.store.append([stored_event_from_cot(event, received=time, sender=sender, groups=groups)]))


def test_history_is_filtered_by_the_stored_groups(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    harness.add_user("root", {"Z"}, role=Role.ADMIN)
    _store(harness, "h-a", groups={"A", "C"})
    _store(harness, "h-b", groups={"B"}, time=NOW + 1)
    _store(harness, "h-direct", groups=set(), time=NOW + 2)
    _store(harness, "h-mine", groups=set(), sender="alice", time=NOW + 3)
    alice = harness.http.get("/api/history", headers=harness.bearer("alice")).json()
    assert [e["uid"] for e in alice["events"]] == ["h-a", "h-mine"]
    assert alice["events"][0]["groups"] == ["A", "C"] and alice["events"][0]["xml"].startswith("<event")
    root = harness.http.get("/api/history?order=desc", headers=harness.bearer("root")).json()
    assert [e["uid"] for e in root["events"]] == ["h-mine", "h-direct"]
    limited = harness.http.get(f"/api/history?limit=1&since={NOW}&until={NOW + 5}",
                               headers=harness.bearer("alice")).json()
    assert limited["count"] == 1 and limited["truncated"] is True
    anon = harness.http.get("/api/history").json()
    assert anon["events"] == []


def _emergency(h: Harness, uid: str, session: str, groups: set[str]) -> None:
    detail = (f'<link uid="dev-{uid}" type="a-f-G" relation="p-p"/><contact callsign="HURT"/>'
              '<emergency type="911 Alert">HURT</emergency>').encode()
    event = make_event(uid=uid, type="b-a-o-tbl", how="h-e", time=NOW, start=NOW, stale=NOW + 60_000,
                       point=Point(3.0, 4.0, 0.0), detail_xml=detail)
    h.inject(event, session, groups)


def test_emergencies_visible_by_group_and_cancelled_by_approvers(harness: Harness) -> None:
    alice, bob = _two_groups(harness)
    harness.add_user("boss", {"A"}, role=Role.APPROVER)
    _emergency(harness, "sos-a", "s-a", {"A"})
    _emergency(harness, "sos-b", "s-b", {"B"})
    listed = harness.http.get("/api/emergencies", headers=alice).json()
    assert [(e["uid"], e["kind"], e["callsign"]) for e in listed] == [("sos-a", "911 Alert", "HURT")]
    assert harness.http.post("/api/emergencies/sos-a/cancel", headers=alice).status_code == 403
    boss = harness.bearer("boss")
    assert harness.http.post("/api/emergencies/sos-b/cancel", headers=boss).status_code == 404
    watcher = harness.connect("s-w", "uid-w", "WATCH", {"A"})
    answer = harness.http.post("/api/emergencies/sos-a/cancel", headers=boss)
    assert answer.status_code == 200 and answer.json() == {"uid": "sos-a", "cancelled": True}
    assert "sos-a" not in harness.emergencies.active and "sos-b" in harness.emergencies.active
    cancels = [e.event for e in watcher.received if e.event.type == "b-a-o-can"]
    assert len(cancels) == 1 and cancels[0].uid == "sos-a"
    assert harness.auditor.entries[-1][:3] == ("boss", "emergency.cancel", "sos-a")
    assert harness.http.get("/api/emergencies", headers=bob).json()[0]["uid"] == "sos-b"
