"""Tracks keyed by identity: the filter converges, duplicates and late reports are handled, tracks go stale."""

from __future__ import annotations

import math

import numpy as np

from rallypoint.fusion.settings import FusionSettings
from rallypoint.fusion.tracker import Tracker
from rallypoint.model.track import Domain, Identity, IdentityKind, TrackStatus
from tests.unit.fusion.scenes import at, latlon, mmsi, obs


def _error_m(report_lat: float, report_lon: float, east: float, north: float) -> float:
    lat, lon = latlon(east, north)
    return math.hypot((report_lat - lat) * 111_000, (report_lon - lon) * 111_000 * math.cos(math.radians(lat)))


def test_kalman_filter_converges_on_a_straight_track() -> None:
    rng = np.random.default_rng(7)
    tracker = Tracker()
    sigma = 15.0
    errors = []
    for k in range(120):
        t = 2.0 * k
        east, north = 6.0 * t, 8.0 * t  # 10 m/s at course 36.87 degrees
        o = obs(t, east + rng.normal(0, sigma), north + rng.normal(0, sigma), identity=mmsi(), ce=sigma)
        (report,) = tracker.update(at(t), o)
        errors.append(_error_m(report.lat, report.lon, east, north))
    assert report.uid == "MMSI-227006760"
    assert report.status is TrackStatus.CONFIRMED
    # Within three standard deviations of the estimate (2 degrees and 0.4 m/s over seeds).
    assert report.speed_mps is not None and abs(report.speed_mps - 10.0) < 1.2
    assert report.course_deg is not None and abs(report.course_deg - 36.87) < 6.0
    # The filtered position beats a single measurement (2-D RMS error sigma * sqrt(2)) once the
    # velocity is learnt.
    rms = float(np.sqrt(np.mean(np.square(errors[60:]))))
    assert rms < 0.6 * sigma * math.sqrt(2)
    # ce comes from the covariance: below the measurement sigma and consistent with the actual
    # error (the 2-D RMS of a filter that is right about itself is about ce * sqrt(2)).
    assert report.ce_m is not None and 2.0 < report.ce_m < sigma
    assert 0.5 < rms / (report.ce_m * math.sqrt(2)) < 2.0


def test_velocity_from_the_source_is_used() -> None:
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, identity=mmsi(), speed=5.0, course=90.0))
    (report,) = tracker.update(at(10), obs(10, 50, 0, identity=mmsi(), speed=5.0, course=90.0))
    assert report.speed_mps is not None and abs(report.speed_mps - 5.0) < 0.2
    assert report.course_deg is not None and abs(report.course_deg - 90.0) < 2.0


def test_uid_normalises_identities() -> None:
    tracker = Tracker()
    (a,) = tracker.update(at(0), obs(0, 0, 0, identity=Identity(IdentityKind.ICAO, "3C6444"), domain=Domain.AIR))
    (b,) = tracker.update(at(0), obs(0, 0, 0, identity=Identity(IdentityKind.APRS, "n0call-9"), domain=Domain.GROUND))
    assert (a.uid, b.uid) == ("ICAO-3c6444", "APRS-N0CALL-9")


def test_duplicate_from_the_same_source_is_dropped_and_counted() -> None:
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, identity=mmsi()))
    assert tracker.update(at(1), obs(0, 0, 0, identity=mmsi(), received_delay=1)) == []
    # The same report by another source is not a duplicate: it confirms, and the track is fused.
    (report,) = tracker.update(at(1), obs(0, 0, 0, identity=mmsi(), source="ais-2", received_delay=1))
    assert tracker.statistics()["duplicate"] == 1
    assert report.sources == ("ais", "ais-2") and report.fused


def test_duplicates_within_one_batch() -> None:
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, identity=mmsi()))
    reports = tracker.update_many(at(5), [obs(5, 50, 0, identity=mmsi()), obs(5, 50, 0, identity=mmsi())])
    assert len(reports) == 1
    assert tracker.statistics()["duplicate"] == 1


def test_late_report_within_the_window_is_applied_older_ones_are_dropped() -> None:
    tracker = Tracker()
    for t in range(0, 31, 10):
        tracker.update(at(t), obs(t, 10.0 * t, 0, identity=mmsi()))
    (late,) = tracker.update(at(31), obs(28, 280, 0, identity=mmsi(), source="ais-2", received_delay=3))
    assert late.time == at(30)  # the estimate's time does not go back
    assert tracker.update(at(31), obs(10, 100, 0, identity=mmsi(), source="ais-3", received_delay=21)) == []
    stats = tracker.statistics()
    assert stats["late_applied"] == 1
    assert stats["out_of_order"] == 1


def test_several_reports_of_one_track_in_a_batch_are_applied_in_turn() -> None:
    tracker = Tracker()
    batch = [obs(t, 10.0 * t, 0, identity=mmsi()) for t in range(0, 60, 5)]
    (report,) = tracker.update_many(at(60), batch)
    assert report.time == at(55)
    assert tracker.statistics()["updates"] == len(batch) - 1
    assert report.speed_mps is not None and abs(report.speed_mps - 10.0) < 1.0


def test_implausible_jump_is_rejected_then_restarts_after_repeats() -> None:
    tracker = Tracker(FusionSettings(jump_reinit_after=3))
    tracker.update(at(0), obs(0, 0, 0, identity=mmsi()))
    tracker.update(at(10), obs(10, 50, 0, identity=mmsi()))
    # 20 km in 10 s is 2000 m/s: no ship does that.
    assert tracker.update(at(20), obs(20, 20_000, 0, identity=mmsi())) == []
    assert tracker.update(at(30), obs(30, 20_050, 0, identity=mmsi())) == []
    assert tracker.statistics()["implausible_jump"] == 2
    (restarted,) = tracker.update(at(40), obs(40, 20_100, 0, identity=mmsi()))
    assert tracker.statistics()["reinitialised"] == 1
    assert _error_m(restarted.lat, restarted.lon, 20_100, 0) < 1.0


def test_same_jump_is_plausible_for_an_aircraft() -> None:
    icao = Identity(IdentityKind.ICAO, "3c6444")
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, identity=icao, domain=Domain.AIR))
    (report,) = tracker.update(at(10), obs(10, 2_500, 0, identity=icao, domain=Domain.AIR))
    assert "implausible_jump" not in tracker.statistics()
    assert report.speed_mps is not None and report.speed_mps > 100


def test_identified_track_goes_stale_per_domain() -> None:
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, identity=mmsi()))
    icao = Identity(IdentityKind.ICAO, "3c6444")
    tracker.update(at(0), obs(0, 0, 0, identity=icao, domain=Domain.AIR))
    assert tracker.expire(at(30)) == []
    (air,) = tracker.expire(at(61))  # aircraft: 60 s
    assert (air.uid, air.status) == ("ICAO-3c6444", TrackStatus.DELETED)
    assert tracker.expire(at(599)) == []
    (sea,) = tracker.expire(at(601))  # vessels: 600 s
    assert sea.uid == "MMSI-227006760"
    assert tracker.statistics()["deleted_stale"] == 2
    assert tracker.statistics()["tracks"] == 0


def test_altitude_is_filtered_and_le_comes_from_its_covariance() -> None:
    icao = Identity(IdentityKind.ICAO, "3c6444")
    rng = np.random.default_rng(5)
    tracker = Tracker()
    reports = []
    for k in range(60):
        o = obs(k, 200.0 * k, 0, identity=icao, domain=Domain.AIR, ce=10.0)
        alt = 3000.0 + 10.0 * k + rng.normal(0, 15.0)  # climbing at 10 m/s, reported with 15 m noise
        fields = {f: getattr(o, f) for f in o.__struct_fields__}
        (report,) = tracker.update(at(k), type(o)(**{**fields, "alt_m": alt}))
        reports.append(report)
    first, last = reports[0], reports[-1]
    assert first.alt_m is not None and first.le_m == 15.0  # one report: its own error (1.5 x ce)
    # le is below one report's error and consistent with the actual error (over seeds: RMS 7.1 m,
    # le 8.3 m, no bias).
    assert last.le_m is not None and 2.0 < last.le_m < 15.0
    assert last.alt_m is not None and abs(last.alt_m - (3000.0 + 590.0)) < 3.0 * last.le_m


def test_many_tracks_beyond_the_initial_capacity() -> None:
    tracker = Tracker()
    batch = [obs(0, 100.0 * i, 0, identity=mmsi(f"{227000000 + i}")) for i in range(1000)]
    assert len(tracker.update_many(at(0), batch)) == 1000
    moved = [obs(10, 100.0 * i + 50, 0, identity=mmsi(f"{227000000 + i}")) for i in range(1000)]
    reports = tracker.update_many(at(10), moved)
    assert len(reports) == 1000 and tracker.statistics()["tracks"] == 1000
    assert all(r.speed_mps is not None and 3.0 < r.speed_mps < 6.0 for r in reports)


def test_invalid_position_is_counted() -> None:
    tracker = Tracker()
    o = obs(0, 0, 0, identity=mmsi())
    bad = type(o)(**{**{f: getattr(o, f) for f in o.__struct_fields__}, "lat": 91.0})
    assert tracker.update(at(0), bad) == []
    assert tracker.statistics()["invalid_position"] == 1


def test_non_finite_extras_are_dropped_and_counted_the_position_still_counts() -> None:
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, identity=mmsi()))
    o = obs(10, 50, 0, identity=mmsi())
    fields = {f: getattr(o, f) for f in o.__struct_fields__}
    bad = type(o)(**{**fields, "ce_m": math.nan, "speed_mps": math.inf, "course_deg": 90.0, "alt_m": math.nan})
    (report,) = tracker.update(at(10), bad)
    assert report.ce_m is not None and math.isfinite(report.ce_m)
    assert report.speed_mps is not None and math.isfinite(report.speed_mps)
    assert report.alt_m is None
    negative = type(o)(**{**fields, "source_time": at(20), "ce_m": -5.0, "speed_mps": -1.0})
    (report,) = tracker.update(at(20), negative)
    assert math.isfinite(report.lat) and report.ce_m is not None and math.isfinite(report.ce_m)
    stats = tracker.statistics()
    assert (stats["invalid_accuracy"], stats["invalid_velocity"], stats["invalid_altitude"]) == (2, 2, 1)
    assert stats["updates"] == 2


def test_a_track_without_domain_takes_the_first_one_stated() -> None:
    tak = Identity(IdentityKind.TAK, "ANDROID-1")
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, identity=tak, source="cot", domain=Domain.UNKNOWN))
    (report,) = tracker.update(at(10), obs(10, 100, 0, identity=tak, source="cot", domain=Domain.GROUND))
    assert report.domain is Domain.GROUND
    # Ground tracks go stale after 900 s, not the 300 s of an unknown one.
    assert tracker.expire(at(400)) == []
    (gone,) = tracker.expire(at(911))
    assert gone.uid == "TAK-ANDROID-1"


def test_a_source_time_in_the_future_is_replaced_by_the_receive_time() -> None:
    tracker = Tracker()
    tracker.update(at(0), obs(0, 0, 0, identity=mmsi()))
    o = obs(10, 50, 0, identity=mmsi())
    fields = {f: getattr(o, f) for f in o.__struct_fields__}
    ahead = type(o)(**{**fields, "source_time": at(3600)})  # a receiver clock an hour fast
    (report,) = tracker.update(at(10), ahead)
    assert report.time == at(10)
    # Later, correct reports are not taken for out of order.
    (report,) = tracker.update(at(20), obs(20, 100, 0, identity=mmsi()))
    assert report.time == at(20)
    stats = tracker.statistics()
    assert stats["future_time"] == 1 and "out_of_order" not in stats
