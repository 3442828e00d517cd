"""The tracker on the generated scenario: one confirmed track per object, radar adds no tracks.

Reports of every simulated source (ADS-B, AIS with duplicates and jitter, identity-less radar with
clutter, GPS) are handed over one batch per source per second, as the feed service does; the
confirmed tracks, carried forward to the evaluation time along their velocity, are scored with
OSPA against the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest

from rallypoint.fusion.metrics import mean_ospa, ospa
from rallypoint.fusion.scenario import SCENARIOS, Scenario, build_scenario
from rallypoint.fusion.scenario_sources import SimReport, SourceKind, simulate
from rallypoint.fusion.tracker import Tracker
from rallypoint.model.track import TrackStatus

CUTOFF_M = 500.0


def _run(scenario: Scenario, keep: Callable[[SimReport], bool]) -> tuple[float, float, list[int], Tracker]:
    """Mean OSPA, mean cardinality part, confirmed track counts over time, and the tracker."""
    reports = [r for r in simulate(scenario) if keep(r)]
    tracker = Tracker()
    duration = float(scenario.targets[0].times[-1])
    i = 0
    scores = []
    counts = []
    for t in np.arange(1.0, duration, 1.0):
        per_source: dict[str, list] = {}
        while i < len(reports) and reports[i].deliver_s <= t:
            per_source.setdefault(reports[i].observation.source, []).append(reports[i].observation)
            i += 1
        now = scenario.start + timedelta(seconds=float(t))
        for batch in per_source.values():
            tracker.update_many(now, batch)
        tracker.expire(now)
        if t < 30 or t % 5:
            # Every 5 s once every source has been heard: a vessel the radar sees before its first
            # AIS report arrives is rightly shown as trk-<n> until then (and joins it within seconds).
            continue
        shown = [r for r in tracker.tracks() if r.status is TrackStatus.CONFIRMED]
        points = scenario.frame.to_local([r.lat for r in shown], [r.lon for r in shown])
        for k, r in enumerate(shown):
            if r.speed_mps and r.course_deg is not None:
                c = np.radians(r.course_deg)
                points[k] += (now - r.time).total_seconds() * r.speed_mps * np.array([np.sin(c), np.cos(c)])
        scores.append(ospa(points if shown else np.zeros((0, 2)), scenario.truth_points(float(t)), c=CUTOFF_M))
        counts.append(len(shown))
    return mean_ospa(scores), float(np.mean([s.cardinality for s in scores])), counts, tracker


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(SCENARIOS["small"], seed=1)


def test_every_source_together_gives_one_track_per_object(scenario: Scenario) -> None:
    value, cardinality, counts, tracker = _run(scenario, lambda r: True)
    assert counts and all(n == len(scenario.targets) for n in counts), counts
    assert cardinality == 0.0
    assert value < 50.0
    stats = tracker.statistics()
    assert stats["duplicate"] > 0  # the AIS source repeats itself; nothing came of it


def test_identity_less_radar_adds_no_tracks_and_no_error(scenario: Scenario) -> None:
    fused, _, fused_counts, _ = _run(scenario, lambda r: True)
    without, _, counts, _ = _run(scenario, lambda r: r.source_kind is not SourceKind.RADAR)
    assert fused_counts == counts
    assert fused <= without * 1.05
