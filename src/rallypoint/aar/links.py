"""Per-unit accumulation while the rows stream by: delivery, delay, distance and a thinned track."""

# mypy: disallow-untyped-defs, disallow-any-generics, warn-return-any

from __future__ import annotations

import itertools
import math
from array import array

from rallypoint.aar.model import NO_TEAM, LinkStats, Track

EARTH_RADIUS_M = 6_371_008.8
# Steps shorter than this (in degrees of latitude and of longitude) are measured flat.
FLAT_STEP_DEG = 0.1
METRES_PER_DEGREE = math.radians(1.0) * EARTH_RADIUS_M
_HALF_RAD = math.radians(0.5)
# A track keeps at most this many points; past it every other point goes and the stride doubles.
MAX_TRACK_POINTS = 1000
# A gap longer than this many report intervals holds missing reports.
GAP_FACTOR = 1.5
# Fewer reports than this give no interval to judge gaps by.
MIN_REPORTS_FOR_INTERVAL = 3


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def step_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance of one step between reports: flat (equirectangular) below ``FLAT_STEP_DEG``, else great-circle.

    Within a few parts per million of the great-circle distance for such short steps, at a fraction
    of its cost (it runs once per stored report).
    """
    dlat, dlon = lat2 - lat1, lon2 - lon1
    if -FLAT_STEP_DEG < dlat < FLAT_STEP_DEG and -FLAT_STEP_DEG < dlon < FLAT_STEP_DEG:
        x = dlon * math.cos((lat1 + lat2) * _HALF_RAD)
        return METRES_PER_DEGREE * math.sqrt(x * x + dlat * dlat)
    return haversine_m(lon1, lat1, lon2, lat2)


def median_interval(times: array[int]) -> int | None:
    """The median gap between consecutive distinct report times (lower median), None with too few reports."""
    if len(times) < MIN_REPORTS_FOR_INTERVAL:
        return None
    gaps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    if not gaps:
        return None
    return gaps[(len(gaps) - 1) // 2]


def missing_reports(times: array[int], interval: int | None) -> int:
    """Reports missing from gaps longer than ``GAP_FACTOR`` intervals: ``round(gap / interval) - 1`` each."""
    if interval is None or interval <= 0:
        return 0
    lost = 0
    for a, b in itertools.pairwise(times):
        gap = b - a
        if gap > GAP_FACTOR * interval:
            lost += max(0, round(gap / interval) - 1)
    return lost


class LinkAccumulator:
    """What one unit's reports add up to; rows arrive in time order."""

    __slots__ = (
        "callsign",
        "delay_sum",
        "delivered",
        "distance_m",
        "last",
        "last_time",
        "late",
        "max_delay",
        "point_times",
        "points",
        "seen",
        "simulated",
        "stride",
        "team",
        "times",
        "uid",
        "unit",
    )

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.callsign = ""
        self.team = NO_TEAM
        self.unit = ""
        self.simulated = False
        self.delivered = 0
        self.late = 0
        self.delay_sum = 0
        self.max_delay = 0
        self.distance_m = 0.0
        self.times: array[int] = array("q")
        self.last: tuple[float, float] | None = None
        self.points: list[tuple[float, float]] = []
        self.point_times: list[int] = []
        self.last_time = 0
        self.stride = 1
        self.seen = 0

    def add(self, time_ms: int, received_ms: int, lon: float, lat: float, late_ms: int) -> None:
        """One stored position report (``received_ms`` is when the server took it in)."""
        self.delivered += 1
        delay = max(0, received_ms - time_ms)
        self.delay_sum += delay
        if delay > self.max_delay:
            self.max_delay = delay
        if delay > late_ms:
            self.late += 1
        self.times.append(time_ms)
        if self.last is not None:
            self.distance_m += step_m(self.last[0], self.last[1], lon, lat)
        self.last = (lon, lat)
        self.last_time = time_ms
        if self.seen % self.stride == 0:
            self.points.append((lon, lat))
            self.point_times.append(time_ms)
            if len(self.points) > MAX_TRACK_POINTS:
                del self.points[1::2]
                del self.point_times[1::2]
                self.stride *= 2
        self.seen += 1

    def stats(self) -> LinkStats:
        """The link's figures."""
        interval = median_interval(self.times)
        lost = missing_reports(self.times, interval)
        return LinkStats(
            uid=self.uid, callsign=self.callsign, team=self.team, unit=self.unit, simulated=self.simulated,
            delivered=self.delivered, late=self.late, lost=lost,
            interval_ms=interval, mean_delay_ms=self.delay_sum / self.delivered if self.delivered else 0.0,
            max_delay_ms=self.max_delay, sent=self.delivered + lost,
        )

    def track(self) -> Track:
        """The thinned path, always ending at the last position."""
        points, times = list(self.points), list(self.point_times)
        if self.last is not None and (not times or times[-1] != self.last_time):
            points.append(self.last)
            times.append(self.last_time)
        return Track(self.uid, self.callsign, self.team, self.simulated, tuple(points), tuple(times))
