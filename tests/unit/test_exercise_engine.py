"""The exercise engine, clock and motion: pure functions of exercise time and the seed."""

from __future__ import annotations

import math

import pytest

from rallypoint.exercise.clock import ClockError, ClockState, ExerciseClock
from rallypoint.exercise.engine import Engine, EngineError, InjectDue, Report
from rallypoint.exercise.model import LatLon, RandomWalk, distance_m
from rallypoint.exercise.motion import make_mover
from rallypoint.exercise.scenario import parse_scenario

HEAD = """[exercise]
id = "e"
seed = {seed}
duration = "10:00"
"""
# 0.009 degrees of latitude is about 1,000.8 m.
ROUTE = """
[[units]]
id = "r"
rate_s = 10
motion = { kind = "route", loop = {loop}, waypoints = [
  { lat = 39.000, lon = -120.0, speed_mps = 10 },
  { lat = 39.009, lon = -120.0, speed_mps = 5 },
] }
"""


def scenario(body: str, seed: int = 1) -> Engine:
    return Engine(parse_scenario(HEAD.replace("{seed}", str(seed)) + body))


def reports(actions: list[InjectDue | Report]) -> list[Report]:
    return [a for a in actions if isinstance(a, Report)]


def test_a_route_is_walked_at_each_legs_speed_and_loops() -> None:
    engine = scenario(ROUTE.replace("{loop}", "true"))
    leg = distance_m(LatLon(39.0, -120.0), LatLon(39.009, -120.0))
    half = engine.position("r", leg / 10 / 2)
    assert half.at.lat == pytest.approx(39.0045, abs=1e-6) and half.speed_mps == pytest.approx(10)
    assert half.course == pytest.approx(0.0, abs=1e-6)
    back = engine.position("r", leg / 10 + leg / 5 / 2)  # half way back at 5 m/s
    assert back.at.lat == pytest.approx(39.0045, abs=1e-6) and back.speed_mps == pytest.approx(5)
    assert back.course == pytest.approx(180.0, abs=1e-6)
    period = leg / 10 + leg / 5
    assert engine.position("r", period + 1.0).at == engine.position("r", 1.0).at


def test_a_route_without_loop_stops_at_its_end() -> None:
    engine = scenario(ROUTE.replace("{loop}", "false"))
    end = engine.position("r", 500.0)
    assert end.at == LatLon(39.009, -120.0) and end.speed_mps == 0


def test_timed_waypoints_are_reached_at_their_times() -> None:
    engine = scenario("""
[[units]]
id = "t"
motion = { kind = "route", waypoints = [
  { lat = 39.0, lon = -120.0, at = "01:00" },
  { lat = 39.1, lon = -120.0, at = "03:00" },
] }
""")
    assert engine.position("t", 0).at == LatLon(39.0, -120.0)
    assert engine.position("t", 120).at.lat == pytest.approx(39.05)
    assert engine.position("t", 600).at == LatLon(39.1, -120.0)


def test_loiter_stays_on_its_circle_and_comes_round_again() -> None:
    engine = scenario("""
[[units]]
id = "o"
motion = { kind = "loiter", center = { lat = 39.0, lon = -120.0 }, radius_m = 200, speed_mps = 4 }
""")
    center = LatLon(39.0, -120.0)
    for t in (0, 13, 77, 150):
        assert distance_m(center, engine.position("o", t).at) == pytest.approx(200, rel=1e-3)
    period = 2 * math.pi * 200 / 4
    start, again = engine.position("o", 0).at, engine.position("o", period).at
    assert distance_m(start, again) < 0.01
    quarter = engine.position("o", period / 4)
    assert quarter.at.lon > center.lon and quarter.course == pytest.approx(180.0)


def test_random_walk_is_seeded_stays_in_its_area_and_does_not_depend_on_query_order() -> None:
    body = """
[[units]]
id = "w"
motion = { kind = "random_walk", speed_mps = 2, area = { south = 39.0, west = -120.01, north = 39.01, east = -120.0 } }
"""
    one, two, other = scenario(body, seed=7), scenario(body, seed=7), scenario(body, seed=8)
    times = [0, 5, 60, 600, 3, 300]
    walk = [one.position("w", t).at for t in times]
    in_order = {t: two.position("w", t).at for t in sorted(times)}  # asked in another order
    assert [in_order[t] for t in times] == walk
    assert [other.position("w", t).at for t in times] != walk
    unit = one.scenario.units[0]
    assert isinstance(unit.motion, RandomWalk)
    area = unit.motion.area
    assert all(area.contains(one.position("w", t).at) for t in range(0, 600, 7))
    moved = make_mover(unit, 7)
    assert moved.at(600).at == walk[3]


def test_reports_come_at_the_units_rate_until_the_end() -> None:
    engine = scenario(ROUTE.replace("{loop}", "true"))
    first = reports(engine.advance(0.0))
    assert [r.fix_s for r in first] == [0.0]
    assert reports(engine.advance(9.9)) == []
    later = reports(engine.advance(600.0))
    assert [r.fix_s for r in later] == [10.0 * n for n in range(1, 60)]
    assert engine.finished() and engine.next_due() is None


def test_link_degrade_cuts_then_thins_and_delays_for_its_duration() -> None:
    engine = scenario(ROUTE.replace("{loop}", "true") + """
[[injects]]
id = "bad-link"
at = "01:00"
kind = "link"
unit = "r"
cut = "00:20"
thin = 3
delay_s = 4
duration = "02:00"
""")
    actions = engine.advance(600.0)
    sent = reports(actions)
    fixes = [r.fix_s for r in sent]
    # Before 60: every report; 60-79: cut; 80-179: 1 in 3 kept (80, 110, 140, 170), 4 s late; from 180: all.
    assert fixes[:6] == [0, 10, 20, 30, 40, 50]
    assert fixes[6:10] == [80, 110, 140, 170]
    assert [r.due_s - r.fix_s for r in sent[6:10]] == [4, 4, 4, 4]
    assert fixes[10] == 180 and sent[10].due_s == 180
    counts = engine.counts()["r"]
    assert (counts.cut, counts.thinned, counts.delayed) == (2, 6, 4)
    assert counts.scheduled == 60 and counts.released == 60 - 2 - 6
    inject = next(a for a in actions if isinstance(a, InjectDue))
    assert inject.inject.id == "bad-link" and inject.due_s == 60
    assert [a.due_s for a in actions] == sorted(a.due_s for a in actions)


def test_a_delayed_report_is_held_until_its_due_time() -> None:
    engine = scenario(ROUTE.replace("{loop}", "true") + """
[[injects]]
id = "late"
at = "00:00"
kind = "link"
unit = "r"
delay_s = 7
""")
    assert reports(engine.advance(5.0)) == []
    assert engine.next_due() == 7.0
    [report] = reports(engine.advance(7.0))
    assert (report.fix_s, report.due_s) == (0.0, 7.0)


def test_silent_unit_sends_nothing_for_a_while() -> None:
    engine = scenario(ROUTE.replace("{loop}", "true") + """
[[injects]]
id = "quiet"
at = "00:30"
kind = "silent"
unit = "r"
duration = "00:30"
""")
    fixes = [r.fix_s for r in reports(engine.advance(100.0))]
    assert fixes == [0, 10, 20, 60, 70, 80, 90, 100]
    assert engine.counts()["r"].silenced == 3


def test_area_trigger_fires_once_when_the_unit_enters_with_its_delay() -> None:
    engine = scenario(ROUTE.replace("{loop}", "true") + """
[[injects]]
id = "arrived"
kind = "chat"
unit = "r"
text = "at the top"
delay = 5
trigger = { kind = "enters", unit = "r", area = { south = 39.0085, west = -120.1, north = 39.1, east = -119.9 } }
""")
    fired = [a for a in engine.advance(600.0) if isinstance(a, InjectDue)]
    # 0.0085 deg is about 945 m: reached between 90 s and 100 s at 10 m/s, seen at the 100 s report.
    assert [(f.inject.id, f.due_s, f.cause) for f in fired] == [("arrived", 105.0, "trigger")]


def test_task_acknowledged_trigger_and_manual_injects() -> None:
    engine = scenario(ROUTE.replace("{loop}", "true") + """
[[injects]]
id = "task"
at = "00:10"
kind = "task"
text = "go"
to_unit = "r"

[[injects]]
id = "then"
kind = "emergency"
unit = "r"
trigger = { kind = "task_acknowledged", inject = "task" }

[[injects]]
id = "spare"
at = "09:00"
kind = "chat"
unit = "r"
text = "spare"
""")
    engine.advance(20.0)
    assert engine.waiting_for_ack() == {"task"}
    engine.task_acknowledged("task", 25.0)
    fired = [a.inject.id for a in engine.advance(25.0) if isinstance(a, InjectDue)]
    assert fired == ["then"] and engine.waiting_for_ack() == set()
    manual = engine.inject_now("spare", 30.0)
    assert (manual.due_s, manual.cause) == (30.0, "manual")
    assert [a for a in engine.advance(600.0) if isinstance(a, InjectDue)] == []
    with pytest.raises(EngineError, match="already carried out"):
        engine.inject_now("spare", 40.0)
    with pytest.raises(EngineError, match="no inject 'nope'"):
        engine.inject_now("nope", 40.0)


def test_first_reports_are_spread_over_the_period() -> None:
    engine = Engine(parse_scenario(HEAD.replace("{seed}", "1") + """
[[units]]
id = "u"
count = 4
rate_s = 1
motion = { kind = "static", at = { lat = 39.0, lon = -120.0 } }
"""))
    assert sorted(r.fix_s for r in reports(engine.advance(0.99))) == [0.0, 0.25, 0.5, 0.75]


def test_clock_pause_resume_and_speed() -> None:
    clock = ExerciseClock(speed=2.0)
    assert clock.state is ClockState.READY and clock.now(100.0) == 0.0 and clock.wall_at(5.0) is None
    clock.start(100.0)
    assert clock.now(105.0) == 10.0 and clock.wall_at(20.0) == 110.0
    clock.pause(105.0)
    assert clock.now(500.0) == 10.0 and clock.wall_at(20.0) is None
    with pytest.raises(ClockError, match="cannot pause: the exercise is paused"):
        clock.pause(501.0)
    clock.resume(500.0)
    assert clock.now(501.0) == 12.0
    clock.set_speed(501.0, 10.0)
    assert clock.now(502.0) == 22.0 and clock.wall_at(32.0) == 503.0
    with pytest.raises(ClockError, match=r"speed must be within 1..10 \(got 11\)"):
        clock.set_speed(502.0, 11.0)
    with pytest.raises(ClockError):
        ExerciseClock(speed=0.5)
    clock.stop(503.0)
    assert clock.state is ClockState.STOPPED and clock.now(900.0) == 32.0
    with pytest.raises(ClockError, match="cannot resume: the exercise is stopped"):
        clock.resume(900.0)


def test_units_of_a_group_are_spaced_along_a_route() -> None:
    engine = Engine(parse_scenario(HEAD.replace("{seed}", "1") + """
[[units]]
id = "c"
count = 2
spacing_s = 50
motion = { kind = "route", waypoints = [
  { lat = 39.000, lon = -120.0, speed_mps = 10 },
  { lat = 39.009, lon = -120.0, speed_mps = 10 },
] }
"""))
    assert engine.position("c-2", 0).at == engine.position("c-1", 50).at
    assert engine.position("c-2", 0).at != engine.position("c-1", 0).at
