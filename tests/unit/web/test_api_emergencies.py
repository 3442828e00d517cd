"""Raising an emergency over the API: it enters like any producer's alert and reaches the caller's groups."""

from __future__ import annotations

from rallypoint.security.users import Role
from tests.unit.web.test_api_harness import Harness, harness_fixture  # noqa: F401


def test_raise_reaches_own_groups_only_and_can_be_cancelled(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    harness.add_user("bob", {"B"})
    harness.add_user("sarge", {"A"}, role=Role.APPROVER)
    team = harness.connect("s-a", "uid-a", "ALPHA", {"A"})
    other = harness.connect("s-b", "uid-b", "BRAVO", {"B"})
    alice = harness.bearer("alice")

    raised = harness.http.post("/api/emergencies", headers=alice,
                               json={"lat": 42.39, "lon": -71.15, "kind": "Ring The Bell", "callsign": "ALI"})
    assert raised.status_code == 201, raised.text
    body = raised.json()
    assert (body["uid"], body["type"], body["callsign"], body["kind"]) == (
        "rallypoint-api-alice-9-1-1", "b-a-o-pan", "ALI-Alert", "Ring The Bell")
    alerts = [e.event for e in team.received if e.event.uid == body["uid"]]
    assert alerts and alerts[0].detail.emergency is not None and alerts[0].point.lat == 42.39
    assert not [e for e in other.received if e.event.uid == body["uid"]]
    assert [e["uid"] for e in harness.http.get("/api/emergencies", headers=alice).json()] == [body["uid"]]
    assert harness.http.get("/api/emergencies", headers=harness.bearer("bob")).json() == []
    assert "emergency.raise" in harness.auditor.actions()

    cancel = harness.http.post(f"/api/emergencies/{body['uid']}/cancel", headers=harness.bearer("sarge"))
    assert cancel.status_code == 200
    assert harness.http.get("/api/emergencies", headers=alice).json() == []


def test_bad_alerts_are_refused(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    alice = harness.bearer("alice")
    for body in ({"lat": 91, "lon": 0}, {"lat": 0, "lon": 0, "kind": "Panic"}, {"lon": 0},
                 {"lat": 0, "lon": 0, "callsign": "bad\x01"}, {"lat": 0, "lon": 0, "extra": 1}):
        answer = harness.http.post("/api/emergencies", headers=alice, json=body)
        assert answer.status_code == 422, body
    # Anonymous callers have no identity to raise an alert as.
    assert harness.http.post("/api/emergencies", json={"lat": 0, "lon": 0}).status_code == 401
    assert harness.emergencies.active == {}


def test_acknowledge_records_each_reader_once(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    harness.add_user("amy", {"A"})
    harness.add_user("bob", {"B"})
    raised = harness.http.post("/api/emergencies", headers=harness.bearer("alice"), json={"lat": 1, "lon": 2})
    uid = raised.json()["uid"]
    path = f"/api/emergencies/{uid}/ack"
    first = harness.http.post(path, headers=harness.bearer("amy"))
    assert first.status_code == 200, first.text
    assert [a["by"] for a in first.json()["acks"]] == ["amy"]
    again = harness.http.post(path, headers=harness.bearer("amy")).json()
    assert again["acks"] == first.json()["acks"]  # the first acknowledgement counts
    both = harness.http.post(path, headers=harness.bearer("alice")).json()["acks"]
    assert [a["by"] for a in both] == ["amy", "alice"]
    assert harness.auditor.actions().count("emergency.ack") == 2
    # Outside the alert's groups, or no such alert: the same 404; anonymous callers cannot acknowledge.
    assert harness.http.post(path, headers=harness.bearer("bob")).status_code == 404
    assert harness.http.post("/api/emergencies/nothing/ack", headers=harness.bearer("amy")).status_code == 404
    assert harness.http.post(path).status_code == 401
