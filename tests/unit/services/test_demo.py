"""The demo simulation: what each unit reports (speed, course) is how it actually moves."""

from __future__ import annotations

import itertools
import math

from rallypoint.clock import ManualClock
from rallypoint.model.cot import CotEvent
from rallypoint.routing.envelope import Envelope
from rallypoint.services.demo import DemoSimulator

PERIOD_S = 2.0
R_EARTH = 6_371_008.8


def _distance_m(a: CotEvent, b: CotEvent) -> float:
    """Great-circle (haversine) distance between two reports."""
    p1, p2 = math.radians(a.point.lat), math.radians(b.point.lat)
    dp, dl = p2 - p1, math.radians(b.point.lon - a.point.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R_EARTH * math.asin(math.sqrt(h))


def _bearing(a: CotEvent, b: CotEvent) -> float:
    """Initial bearing from ``a`` to ``b``, degrees clockwise from north."""
    p1, p2 = math.radians(a.point.lat), math.radians(b.point.lat)
    dl = math.radians(b.point.lon - a.point.lon)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def _angle_between(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _run(units: int, ticks: int) -> list[list[Envelope]]:
    clock = ManualClock()
    sim = DemoSimulator(clock, lambda _: None, units=units, period_s=PERIOD_S)
    rounds = []
    for _ in range(ticks):
        rounds.append(sim.tick(clock.now_ms()))
        clock.advance(PERIOD_S)
    return rounds


def test_distance_between_reports_matches_reported_speed_and_course() -> None:
    rounds = _run(units=12, ticks=30)
    for earlier, later in itertools.pairwise(rounds):
        for before, after in zip(earlier, later, strict=True):
            a, b = before.event, after.event
            assert a.detail.speed is not None and b.detail.speed is not None and b.detail.course is not None
            measured = _distance_m(a, b) / ((b.time - a.time) / 1000.0)
            assert math.isclose(measured, b.detail.speed, rel_tol=0.02, abs_tol=0.05), (a.detail.callsign, measured)
            if b.detail.speed > 0:
                # The chord between two reports lies between the headings at either end.
                heading = _bearing(a, b)
                assert a.detail.course is not None
                assert _angle_between(heading, a.detail.course) < 3.0, (a.detail.callsign, heading, a.detail.course)
                assert _angle_between(heading, b.detail.course) < 3.0, (b.detail.callsign, heading, b.detail.course)


def test_units_move_at_speeds_of_what_they_are() -> None:
    [first, *_] = _run(units=8, ticks=1)
    speeds = {env.event.detail.callsign: env.event.detail.speed for env in first}
    assert speeds["SAR-ALPHA"] == 1.4 and speeds["MEDIC-1"] is not None and speeds["MEDIC-1"] < 2.0
    assert speeds["DRONE-2"] is not None and speeds["DRONE-2"] > 5.0
    # Varied: walkers, a dog team, vehicles, a drone; nothing faster than a drone.
    assert len(set(speeds.values())) >= 5
    assert all(s is not None and 0.0 <= s <= 20.0 for s in speeds.values())
    # Each unit its own callsign and uid; all within a few km of each other.
    assert len({env.event.uid for env in first}) == 8 and len(speeds) == 8
    lats = [env.event.point.lat for env in first]
    assert max(lats) - min(lats) < 0.05


def test_units_keep_moving_over_many_reports() -> None:
    rounds = _run(units=8, ticks=60)
    for index in range(8):
        track = [r[index].event for r in rounds]
        if track[0].detail.speed:
            travelled = sum(_distance_m(a, b) for a, b in itertools.pairwise(track))
            assert math.isclose(travelled, track[0].detail.speed * PERIOD_S * 59, rel_tol=0.02)
            assert len({(e.point.lat, e.point.lon) for e in track}) == len(track)


def test_reports_go_to_the_groups_asked_for_each_round() -> None:
    clock = ManualClock()
    groups = [frozenset({"__ANON__"})]
    sim = DemoSimulator(clock, lambda _: None, units=2, groups=lambda: groups[0])
    assert {env.origin.groups for env in sim.tick(clock.now_ms())} == {frozenset({"__ANON__"})}
    groups[0] = frozenset({"__ANON__", "Red"})
    assert {env.origin.groups for env in sim.tick(clock.now_ms())} == {frozenset({"__ANON__", "Red"})}
