"""Where a simulated unit is at a given exercise second: pure functions of time (and the seed).

Every mover answers ``at(t_s)`` for any ``t_s`` in any order and always gives the same answer for
the same time, so a paused, sped-up or restarted exercise puts units exactly where the script says.
Legs are interpolated linearly in latitude and longitude: scenario legs are short (metres to a few
kilometres), where the difference from the great circle is far below a GPS fix's error.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from typing import Protocol

from rallypoint.exercise.model import (
    EARTH_RADIUS_M,
    Box,
    LatLon,
    Loiter,
    RandomWalk,
    Route,
    Static,
    Unit,
    distance_m,
)


@dataclass(frozen=True, slots=True)
class Fix:
    """A unit's position, course (degrees from north) and speed (m/s) at one moment."""

    at: LatLon
    course: float
    speed_mps: float


class Mover(Protocol):
    """Answers where its unit is at exercise second ``t_s``."""

    def at(self, t_s: float) -> Fix: ...


def bearing(a: LatLon, b: LatLon) -> float:
    """Initial bearing from ``a`` to ``b`` in degrees (0 = north, clockwise)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dl = math.radians(b.lon - a.lon)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def offset(origin: LatLon, north_m: float, east_m: float) -> LatLon:
    """``origin`` moved by metres north and east (local flat approximation)."""
    lat = origin.lat + math.degrees(north_m / EARTH_RADIUS_M)
    lon = origin.lon + math.degrees(east_m / (EARTH_RADIUS_M * max(math.cos(math.radians(origin.lat)), 1e-6)))
    return LatLon(lat, lon)


def _between(a: LatLon, b: LatLon, fraction: float) -> LatLon:
    return LatLon(a.lat + (b.lat - a.lat) * fraction, a.lon + (b.lon - a.lon) * fraction)


class _Legs:
    """Straight legs with the exercise second each starts at; shared by routes and random walks."""

    def __init__(self) -> None:
        self.points: list[LatLon] = []
        self.starts: list[float] = []  # starts[i]: time at points[i]

    def add(self, point: LatLon, time_s: float) -> None:
        self.points.append(point)
        self.starts.append(time_s)

    def fix(self, t_s: float) -> Fix:
        i = bisect.bisect_right(self.starts, t_s) - 1
        if i < 0:
            return Fix(self.points[0], self._course(0), 0.0)
        if i >= len(self.points) - 1:
            return Fix(self.points[-1], self._course(len(self.points) - 2), 0.0)
        a, b = self.points[i], self.points[i + 1]
        span = self.starts[i + 1] - self.starts[i]
        fraction = (t_s - self.starts[i]) / span if span > 0 else 1.0
        speed = distance_m(a, b) / span if span > 0 else 0.0
        return Fix(_between(a, b, fraction), bearing(a, b), speed)

    def _course(self, leg: int) -> float:
        if leg < 0 or leg + 1 >= len(self.points):
            return 0.0
        return bearing(self.points[leg], self.points[leg + 1])


class StaticMover:
    """Stays put."""

    def __init__(self, motion: Static) -> None:
        self._fix = Fix(motion.at, 0.0, 0.0)

    def at(self, t_s: float) -> Fix:
        return self._fix


class RouteMover:
    """Along waypoints at their speeds (or reaching each at its time); a loop starts over."""

    def __init__(self, motion: Route, offset_s: float = 0.0) -> None:
        self._legs = _Legs()
        self._offset = offset_s
        points = list(motion.waypoints)
        if points[0].time_s is not None:
            for p in points:
                assert p.time_s is not None
                self._legs.add(p.at, p.time_s)
            self._period = 0.0
            return
        stops = [*points, points[0]] if motion.loop else points
        t = 0.0
        for i, p in enumerate(stops):
            self._legs.add(p.at, t)
            if i + 1 < len(stops):
                speed = p.speed_mps or 1.0
                t += distance_m(p.at, stops[i + 1].at) / speed
        self._period = t if motion.loop and t > 0 else 0.0

    def at(self, t_s: float) -> Fix:
        t = t_s + self._offset
        if self._period:
            t %= self._period
        return self._legs.fix(t)


class LoiterMover:
    """Round a circle clockwise at constant speed, starting due north of the centre."""

    def __init__(self, motion: Loiter, offset_s: float = 0.0) -> None:
        self._m = motion
        self._offset = offset_s

    def at(self, t_s: float) -> Fix:
        m = self._m
        angle = (t_s + self._offset) * m.speed_mps / m.radius_m
        where = offset(m.center, m.radius_m * math.cos(angle), m.radius_m * math.sin(angle))
        return Fix(where, (math.degrees(angle) + 90.0) % 360.0, m.speed_mps)


class RandomWalkMover:
    """Straight legs between random points of the area; the same seed and unit give the same walk."""

    def __init__(self, motion: RandomWalk, seed: int, unit_id: str) -> None:
        self._m = motion
        # A string seed is hashed with SHA-512 by ``random``: stable across runs and Python versions.
        self._rng = random.Random(f"{seed}:{unit_id}")
        self._legs = _Legs()
        self._legs.add(self._point(), 0.0)

    def _point(self) -> LatLon:
        area, rng = self._m.area, self._rng
        if isinstance(area, Box):
            return LatLon(rng.uniform(area.south, area.north), rng.uniform(area.west, area.east))
        radius = area.radius_m * math.sqrt(rng.random())
        angle = rng.uniform(0.0, 2 * math.pi)
        return offset(area.center, radius * math.cos(angle), radius * math.sin(angle))

    def at(self, t_s: float) -> Fix:
        legs = self._legs
        while legs.starts[-1] <= t_s:
            nxt = self._point()
            span = max(distance_m(legs.points[-1], nxt) / self._m.speed_mps, 1.0)
            legs.add(nxt, legs.starts[-1] + span)
        return legs.fix(t_s)


def make_mover(unit: Unit, seed: int) -> Mover:
    """The mover for ``unit``'s motion."""
    motion = unit.motion
    if isinstance(motion, Static):
        return StaticMover(motion)
    if isinstance(motion, Route):
        return RouteMover(motion, unit.offset_s)
    if isinstance(motion, Loiter):
        return LoiterMover(motion, unit.offset_s)
    return RandomWalkMover(motion, seed, unit.id)

