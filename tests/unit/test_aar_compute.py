"""The report's figures from a hand-built history (``rallypoint.aar.compute``), checked exactly."""

from __future__ import annotations

import math

import pytest

from rallypoint.aar.compute import ReportBuilder
from rallypoint.aar.links import EARTH_RADIUS_M, haversine_m, median_interval, missing_reports, step_m
from tests.support.aar_history import T0, build, history, row


def test_rows_of_other_exercises_are_left_out() -> None:
    report = build()
    assert report.rows_read == len(history())
    assert report.rows_other_exercises == 3
    assert report.rows_kept == len(history()) - 3
    assert report.exercises_seen == ("drill", "other")
    assert "sim-x" not in {link.uid for link in report.links}
    assert "sim-x" in {link.uid for link in build(None).links}


def test_each_inject_gets_its_first_response() -> None:
    injects = {inj.id: inj for inj in build().injects}
    assert list(injects) == ["cas-12", "task-1", "dz", "chat-1"]
    cas = injects["cas-12"]
    assert (cas.awaits, cas.target, cas.at_ms) == ("emergency", "sim-a1-9-1-1", T0 + 3000)
    assert cas.response is not None and cas.response.what == "emergency acknowledged" and cas.response.by == "medic"
    assert cas.latency_ms == 5000
    task = injects["task-1"]
    # Timed from when the task was assigned (3.9 s), before the runner's marker (4 s).
    assert (task.awaits, task.target, task.at_ms, task.latency_ms) == ("task", "T1", T0 + 3900, 6100)
    assert task.response is not None and task.response.what == "task acknowledged" and task.response.by == "BRAVO"
    dz = injects["dz"]
    # No ref: paired with the designation proposed closest to the marker.
    assert (dz.awaits, dz.target, dz.at_ms, dz.latency_ms) == ("designation", "D1", T0 + 5100, 14_900)
    assert dz.response is not None and dz.response.source == "audit designation.approve"
    chat = injects["chat-1"]
    assert (chat.awaits, chat.response, chat.latency_ms) == ("", None, None)


def test_a_cancel_answers_an_emergency_nobody_acknowledged() -> None:
    builder = ReportBuilder(since_ms=T0, until_ms=T0 + 60_000, exercise="drill")
    for r in history():
        builder.add_row(r)
    (cas,) = [inj for inj in builder.finish().injects if inj.id == "cas-12"]
    assert cas.response is not None and cas.response.what == "emergency cancelled" and cas.latency_ms == 6000


def test_delivery_per_link() -> None:
    links = {link.uid: link for link in build().links}
    a1 = links["sim-a1"]
    assert (a1.delivered, a1.late, a1.lost, a1.sent, a1.interval_ms) == (8, 1, 2, 10, 1000)
    assert (a1.unit, a1.team, a1.callsign, a1.simulated) == ("alpha-1", "Cyan", "ALPHA 1", True)
    assert a1.max_delay_ms == 3000 and a1.mean_delay_ms == pytest.approx((7 * 100 + 3000) / 8)
    b1 = links["sim-b1"]
    assert (b1.delivered, b1.late, b1.lost, b1.interval_ms) == (3, 0, 0, 2000)
    live = links["ANDROID-1"]
    # Two reports give no rhythm to judge gaps by.
    assert (live.delivered, live.lost, live.interval_ms, live.simulated) == (2, 0, None, False)


def test_team_summary() -> None:
    teams = {t.team: t for t in build().teams}
    assert set(teams) == {"Cyan", "Red"}
    cyan, red = teams["Cyan"], teams["Red"]
    assert (cyan.simulated_units, cyan.live_units, cyan.reports, cyan.emergencies, cyan.tasks) == (1, 1, 10, 1, 0)
    assert (red.simulated_units, red.live_units, red.reports, red.emergencies, red.tasks) == (1, 0, 3, 0, 1)
    assert cyan.distance_m == pytest.approx(math.radians(0.007) * EARTH_RADIUS_M, rel=1e-9)
    assert red.distance_m == 0.0


def test_timeline_is_in_time_order_and_holds_control_injects_and_responses() -> None:
    report = build()
    times = [e.at_ms for e in report.timeline]
    assert times == sorted(times)
    whats = [e.what for e in report.timeline]
    assert whats[0] == "exercise.start"
    assert "inject cas-12 (emergency)" in whats and "response to cas-12: emergency acknowledged" in whats
    assert "emergency cancelled" in whats and "emergency raised (b-a-o-tbl)" in whats
    assert report.bbox == (20.0, 10.0, 20.0, 10.007)


def test_gap_rules() -> None:
    from array import array

    times = array("q", [0, 1000, 2000, 5000, 6000, 6000, 7400])
    assert median_interval(times) == 1000
    # 3000 -> 2 missing; 1400 is within 1.5 intervals.
    assert missing_reports(times, 1000) == 2
    assert median_interval(array("q", [0, 0, 0])) is None
    assert missing_reports(times, None) == 0


def test_tracks_stay_bounded_and_end_at_the_last_position() -> None:
    builder = ReportBuilder(since_ms=T0, until_ms=T0 + 10**8)
    for i in range(5000):
        builder.add_row(row("walker", t=i * 1000, lat=10 + i * 1e-4, team="Cyan"))
    (track,) = builder.finish().tracks
    assert len(track.points) <= 1001
    assert track.points[0] == (20.0, 10.0) and track.points[-1] == (20.0, 10 + 4999 * 1e-4)


def test_short_steps_measured_flat_agree_with_great_circle() -> None:
    for lat in (0.0, 45.0, 70.0):
        for d in (1e-5, 0.01, 0.099):
            flat, exact = step_m(10.0, lat, 10.0 + d, lat + d / 2), haversine_m(10.0, lat, 10.0 + d, lat + d / 2)
            assert flat == pytest.approx(exact, rel=1e-5)
    # A long jump is measured on the sphere.
    assert step_m(0.0, 0.0, 90.0, 0.0) == pytest.approx(math.pi / 2 * EARTH_RADIUS_M)


def test_a_marker_inject_is_an_inject_not_a_reporting_unit() -> None:
    # The runner's marker is an a- type sent m-s like every simulated event: only its inject mark tells it apart.
    builder = ReportBuilder(since_ms=T0, until_ms=T0 + 60_000, exercise="drill")
    for r in history():
        builder.add_row(r)
    builder.add_row(row("RP-EX-drill-alpha-1.lz", t=7000, type="a-u-G", lat=10.5, lon=20.5, callsign="LZ",
                        exercise="drill", unit="alpha-1", inject="lz", kind="marker"))
    report = builder.finish()
    assert "RP-EX-drill-alpha-1.lz" not in {link.uid for link in report.links}
    assert {link.uid for link in report.links} == {link.uid for link in build().links}
    (lz,) = [inj for inj in report.injects if inj.id == "lz"]
    assert (lz.kind, lz.at_ms, lz.where, lz.awaits) == ("marker", T0 + 7000, (20.5, 10.5), "")
