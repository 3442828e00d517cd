"""Scoring a CoT picture against the truth: latest event per feed track, carried to the instant, OSPA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from rallypoint.fusion.metrics import LocalFrame
from rallypoint.fusion.picture_score import PictureScore

FRAME = LocalFrame(54.0, 10.0)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def event(uid: str, east: float, north: float, *, at: datetime = T0, stale_s: float = 60.0, course: float | None = None,
          speed: float | None = None, cot_type: str = "a-n-A-C-F") -> bytes:
    lat, lon = FRAME.to_geodetic(east, north)
    track = f'<track course="{course}" speed="{speed}"/>' if course is not None else ""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    stale = (at + timedelta(seconds=stale_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (f'<?xml version="1.0"?><event version="2.0" uid="{uid}" type="{cot_type}" how="m-f" time="{stamp}" '
            f'start="{stamp}" stale="{stale}"><point lat="{lat}" lon="{lon}" hae="0" ce="10" le="10"/>'
            f"<detail>{track}</detail></event>").encode()


def test_tracks_are_carried_to_the_instant_and_scored() -> None:
    truth = np.array([[1000.0, 0.0], [0.0, 2000.0]])
    score = PictureScore(FRAME, lambda t: truth + np.array([[10.0 * t, 0.0], [0.0, 0.0]]), c=100.0, p=1)
    # A track 10 s old moving east at 10 m/s, and a still one 30 m off.
    score.receive(event("ICAO-abc123", 900.0, 0.0, at=T0 - timedelta(seconds=10), course=90.0, speed=10.0))
    score.receive(event("MMSI-211000000", 0.0, 2030.0))
    sample = score.sample(T0, scenario_s=0.0)
    assert sample.tracks == 2 and sample.targets == 2
    assert sample.ospa.value == pytest.approx(15.0, abs=0.01)  # (0 + 30) / 2


def test_only_feed_tracks_count_and_deletes_and_stale_tracks_leave() -> None:
    score = PictureScore(FRAME, lambda t: np.array([[0.0, 0.0]]), c=100.0)
    score.receive(event("ANDROID-1234", 5000.0, 0.0))  # a TAK client, not a feed track
    score.receive(event("trk-7", 0.0, 0.0))
    score.receive(event("GPS-gps-1", 50.0, 0.0, stale_s=-1.0))  # already stale
    assert score.sample(T0, 0.0).tracks == 1
    score.receive(event("trk-7", 0.0, 0.0, cot_type="t-x-d-d"))
    assert score.sample(T0, 0.0).tracks == 0


def test_events_split_across_reads_and_garbage_is_counted() -> None:
    score = PictureScore(FRAME, lambda t: np.zeros((0, 2)), c=100.0)
    raw = event("ICAO-abc123", 0.0, 0.0)
    score.receive(raw[:40])
    score.receive(raw[40:] + b"<event uid='ICAO-x'><point lat='nope'/></event>" + b"<event <<</event>")
    assert score.sample(T0, 0.0).tracks == 1
    assert score.rejected == 2
    assert score.samples[-1].ospa.value == 100.0  # one track, no truth: the cutoff
