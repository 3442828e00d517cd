"""Which file feeds the API may add (only files under the data directory's layers folder), and the
merge proposal endpoints: admins only, decisions audited."""

from __future__ import annotations

from pathlib import Path

import msgspec

from rallypoint.clock import ManualClock
from rallypoint.config import FeedConfig
from rallypoint.fusion.tracker import Tracker
from rallypoint.security.users import Role
from rallypoint.services.feeds import FeedService
from rallypoint.web.api.feeds import file_allowed
from tests.unit.services.test_feeds_merges import USER, drive
from tests.unit.services.test_feeds_service import opener
from tests.unit.web.test_api_harness import Harness, harness_fixture  # noqa: F401


def test_file_feeds_over_the_api_stay_in_the_layers_folder(tmp_path: Path) -> None:
    layers = (tmp_path / "layers").resolve()
    layers.mkdir()
    assert file_allowed(f"geojson+file://{layers}/zones.geojson", layers)
    assert file_allowed(f"kml+file://{layers}/sub/dir/a.kmz", layers)
    assert not file_allowed("geojson+file:///etc/passwd", layers)
    assert not file_allowed(f"geojson+file://{layers}/../secret.geojson", layers)
    assert not file_allowed(f"geojson+file://{layers}/..%2Fsecret.geojson", layers)
    (layers / "link.geojson").symlink_to("/etc/hostname")
    assert not file_allowed(f"geojson+file://{layers}/link.geojson", layers)
    assert file_allowed("sbs+tcp://127.0.0.1:30003", layers)


def test_merge_proposals_are_listed_and_decided_by_admins_only_and_audited(harness: Harness) -> None:
    clock = ManualClock()
    feeds = FeedService(clock=clock, accept=lambda _e: None, tracker=Tracker(), opener=opener)
    feeds.add(FeedConfig(url="test+aprs"), origin="config")
    harness.rebuild(feeds=feeds)
    harness.add_user("root", {"Ops"}, role=Role.ADMIN)
    harness.add_user("alice", {"Ops"}, role=Role.APPROVER)
    root, alice = harness.bearer("root"), harness.bearer("alice")
    assert harness.http.get("/api/feeds/proposals", headers=root).json() == []
    drive(feeds, clock, 60)
    (listed,) = harness.http.get("/api/feeds/proposals", headers=root).json()
    assert (listed["primary"], listed["secondary"]) == (f"TAK-{USER}", "APRS-N0CALL-9")
    assert listed["secondary_identity"] == {"kind": "aprs", "value": "N0CALL-9"}
    for method, path in (("GET", "/api/feeds/proposals"), ("POST", f"/api/feeds/proposals/{listed['id']}/accept"),
                         ("POST", f"/api/feeds/proposals/{listed['id']}/reject")):
        assert harness.http.request(method, path, headers=alice).status_code == 403, path
        assert harness.http.request(method, path).status_code == 401, path
    missing = harness.http.post("/api/feeds/proposals/mp-999/reject", headers=root)
    assert missing.status_code == 404 and missing.json()["error"] == "no_proposal"
    accepted = harness.http.post(f"/api/feeds/proposals/{listed['id']}/accept", headers=root)
    assert accepted.status_code == 200 and accepted.json()["id"] == listed["id"]
    assert harness.http.post(f"/api/feeds/proposals/{listed['id']}/accept", headers=root).status_code == 404
    assert harness.http.get("/api/feeds/proposals", headers=root).json() == []
    assert harness.auditor.entries[-1] == ("root", "admin.feed.merge.accept", listed["id"],
                                           {"primary": f"TAK-{USER}", "secondary": "APRS-N0CALL-9"})


def test_a_rejected_proposal_is_audited_and_gone(harness: Harness) -> None:
    clock = ManualClock()
    feeds = FeedService(clock=clock, accept=lambda _e: None, tracker=Tracker(), opener=opener)
    feeds.add(FeedConfig(url="test+aprs"), origin="config")
    harness.rebuild(feeds=feeds)
    harness.add_user("root", {"Ops"}, role=Role.ADMIN)
    root = harness.bearer("root")
    drive(feeds, clock, 60)
    (listed,) = harness.http.get("/api/feeds/proposals", headers=root).json()
    assert harness.http.post(f"/api/feeds/proposals/{listed['id']}/reject", headers=root).status_code == 200
    assert harness.http.get("/api/feeds/proposals", headers=root).json() == []
    assert harness.auditor.actions()[-1] == "admin.feed.merge.reject"


def test_a_server_with_several_workers_refuses_feeds_added_at_run_time(harness: Harness) -> None:
    feeds = FeedService(clock=ManualClock(), accept=lambda _e: None, tracker=Tracker(), opener=opener)
    harness.rebuild(feeds=feeds, settings=msgspec.structs.replace(harness.ctx.settings, workers=2))
    harness.add_user("root", {"Ops"}, role=Role.ADMIN)
    answer = harness.http.post("/api/feeds", headers=harness.bearer("root"), json={"url": "test+ais"})
    assert answer.status_code == 409 and answer.json()["error"] == "workers"
    assert feeds.list() == []
