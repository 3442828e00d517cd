"""Identity-less observations: chi-square gate, global nearest neighbour, lifecycle, merging into identified tracks."""

from __future__ import annotations

import math

import numpy as np

from rallypoint.fusion.settings import FusionSettings
from rallypoint.fusion.tracker import Tracker
from rallypoint.model.track import Domain, TrackReport, TrackStatus
from tests.unit.fusion.scenes import at, latlon, mmsi, obs


def _distance(report: TrackReport, east: float, north: float) -> float:
    lat, lon = latlon(east, north)
    return math.hypot((report.lat - lat) * 111_000, (report.lon - lon) * 111_000 * math.cos(math.radians(lat)))


def _by_uid(tracker: Tracker) -> dict[str, TrackReport]:
    return {r.uid: r for r in tracker.tracks()}


def test_lifecycle_tentative_confirmed_deleted() -> None:
    tracker = Tracker()
    # One hit: tentative, not shown.
    assert tracker.update(at(0), obs(0, 0, 0, source="radar", ce=20)) == []
    assert tracker.statistics()["tracks_tentative"] == 1
    assert tracker.update(at(10), obs(10, 50, 0, source="radar", ce=20)) == []
    # Third hit (M = 3 of N = 5): confirmed and shown.
    (confirmed,) = tracker.update(at(20), obs(20, 100, 0, source="radar", ce=20))
    assert (confirmed.uid, confirmed.status) == ("trk-1", TrackStatus.CONFIRMED)
    assert tracker.statistics()["confirmed"] == 1
    # Stale after the domain's stale time (sea: 600 s): deleted and said so.
    assert tracker.expire(at(600)) == []
    (deleted,) = tracker.expire(at(621))
    assert (deleted.uid, deleted.status) == ("trk-1", TrackStatus.DELETED)


def test_tentative_track_that_misses_too_often_is_deleted_silently() -> None:
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, source="radar", ce=20))
    # Sea revisit is 30 s; N - M = 2 misses allowed, the third sinks it.
    assert tracker.expire(at(89)) == []
    assert tracker.statistics()["tracks"] == 1
    assert tracker.expire(at(91)) == []
    stats = tracker.statistics()
    assert stats["tracks"] == 0 and stats["deleted_tentative"] == 1


def test_gate_rejects_an_outlier_which_starts_its_own_track() -> None:
    tracker = Tracker()
    for t in range(0, 50, 5):
        tracker.update(at(t), obs(t, 5.0 * t, 0, source="radar", ce=10))
    before = _by_uid(tracker)["trk-1"]
    # 800 m off the predicted position with 10 m noise: far outside the gate, inside the search radius.
    tracker.update(at(50), obs(50, 250, 800, source="radar", ce=10))
    after = _by_uid(tracker)
    assert set(after) == {"trk-1", "trk-2"}
    assert after["trk-1"] == before
    assert after["trk-2"].status is TrackStatus.TENTATIVE


def test_gnn_keeps_crossing_targets_apart() -> None:
    rng = np.random.default_rng(3)
    tracker = Tracker(FusionSettings(report_tentative=True))

    def truth(t: float) -> list[tuple[float, float]]:
        # Two boats crossing at right angles at the origin at t = 50 s, 14 m/s each.
        return [(-500.0 + 10.0 * t, -500.0 + 10.0 * t), (-500.0 + 10.0 * t, 500.0 - 10.0 * t)]

    first: dict[int, str] = {}
    for t in range(0, 101, 2):
        points = truth(t)
        batch = [
            obs(t, e + rng.normal(0, 5), n + rng.normal(0, 5), source="radar", ce=5.0, speed=None) for e, n in points
        ]
        # The order within a scan must not matter: give them in either order.
        if t % 4:
            batch.reverse()
        reports = tracker.update_many(at(t), batch)
        if t == 0:
            for report in reports:
                first[int(np.argmin([_distance(report, e, n) for e, n in points]))] = report.uid
    tracks = _by_uid(tracker)
    assert len(tracks) == 2
    for target, (e, n) in enumerate(truth(100)):
        assert _distance(tracks[first[target]], e, n) < 20.0


def test_identity_less_report_updates_the_identified_track() -> None:
    tracker = Tracker()
    for t in range(0, 60, 10):
        tracker.update(at(t), obs(t, 5.0 * t, 0, identity=mmsi(), speed=5.0, course=90.0))
    (fused,) = tracker.update(at(61), obs(61, 305, 20, source="radar", ce=50))
    assert fused.uid == "MMSI-227006760"
    assert fused.sources == ("ais", "radar") and fused.fused
    stats = tracker.statistics()
    assert stats["tracks"] == 1 and stats["associated"] == 1


def test_identity_less_track_joins_the_identified_track_it_moves_with() -> None:
    tracker = Tracker()
    for t in range(0, 30, 10):
        tracker.update(at(t), obs(t, 5.0 * t, 0, source="radar", ce=30))
    assert "trk-1" in _by_uid(tracker)
    deleted: list[TrackReport] = []
    for t in range(30, 120, 10):
        # The vessel's AIS turns on; radar keeps reporting it too (the radar's track wins the
        # association at first: it has the history).
        out = tracker.update(at(t), obs(t, 5.0 * t, 0, identity=mmsi(), speed=5.0, course=90.0))
        out += tracker.update(at(t + 1), obs(t + 1, 5.0 * (t + 1), 10, source="radar", ce=30))
        deleted += [r for r in out if r.status is TrackStatus.DELETED]
    assert [r.uid for r in deleted] == ["trk-1"]
    tracks = _by_uid(tracker)
    assert set(tracks) == {"MMSI-227006760"}
    assert tracks["MMSI-227006760"].sources == ("ais", "radar")
    assert tracker.statistics()["merged"] == 1


def test_far_apart_domains_do_not_associate() -> None:
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, identity=mmsi()))
    tracker.update(at(1), obs(1, 0, 0, source="radar", domain=Domain.AIR, ce=30))
    assert set(_by_uid(tracker)) == {"MMSI-227006760", "trk-1"}


def test_tentative_identity_less_track_joins_at_once_and_silently() -> None:
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, source="radar", ce=30))  # tentative trk-1, never shown
    out = tracker.update(at(2), obs(2, 10, 0, identity=mmsi(), speed=5.0, course=90.0))
    assert [r.uid for r in out] == ["MMSI-227006760"]
    assert set(_by_uid(tracker)) == {"MMSI-227006760"}
    assert tracker.statistics()["merged"] == 1
    assert out[0].sources == ("ais", "radar")
