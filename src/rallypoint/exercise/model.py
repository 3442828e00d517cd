"""A validated exercise scenario: frozen values the engine trusts (built by ``exercise.scenario``).

Times are exercise seconds from the start of the exercise; positions are WGS-84 degrees; speeds are
metres per second. The file format and its rules are in docs/exercises.md ("Scenario files").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class LatLon:
    """One position in degrees."""

    lat: float
    lon: float


def distance_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Box:
    """An area between two latitudes and two longitudes (west below east)."""

    south: float
    west: float
    north: float
    east: float

    def contains(self, at: LatLon) -> bool:
        """Whether ``at`` lies inside or on the edge."""
        return self.south <= at.lat <= self.north and self.west <= at.lon <= self.east


@dataclass(frozen=True, slots=True)
class Circle:
    """An area within ``radius_m`` of ``center``."""

    center: LatLon
    radius_m: float

    def contains(self, at: LatLon) -> bool:
        """Whether ``at`` lies inside or on the edge."""
        return distance_m(self.center, at) <= self.radius_m


Area = Box | Circle


@dataclass(frozen=True, slots=True)
class Waypoint:
    """A route point: the speed towards the next point, or the exercise second it is reached."""

    at: LatLon
    speed_mps: float | None = None
    time_s: float | None = None


@dataclass(frozen=True, slots=True)
class Static:
    """A unit that stays where it is."""

    at: LatLon


@dataclass(frozen=True, slots=True)
class Route:
    """Along waypoints (from a GPX or KML track too); ``loop`` goes round again from the first point."""

    waypoints: tuple[Waypoint, ...]
    loop: bool = False


@dataclass(frozen=True, slots=True)
class Loiter:
    """Round a circle at constant speed."""

    center: LatLon
    radius_m: float
    speed_mps: float


@dataclass(frozen=True, slots=True)
class RandomWalk:
    """Straight legs to random points of an area, seeded by the exercise seed and the unit id."""

    area: Area
    speed_mps: float


Motion = Static | Route | Loiter | RandomWalk


@dataclass(frozen=True, slots=True)
class Unit:
    """One simulated unit: one client connection to the server."""

    id: str
    callsign: str
    team: str
    role: str
    type: str
    rate_s: float
    motion: Motion
    # Seconds of motion already done at exercise start (copies made by ``count`` spread along a route).
    offset_s: float = 0.0


class InjectKind(Enum):
    """What an inject does (docs/exercises.md lists the fields of each)."""

    EMERGENCY = "emergency"
    EMERGENCY_CANCEL = "emergency_cancel"
    CHAT = "chat"
    MARKER = "marker"
    DESIGNATION = "designation"
    TASK = "task"
    FEED_START = "feed_start"
    FEED_STOP = "feed_stop"
    LINK = "link"
    SILENT = "silent"


# Injects carried out through the native API rather than a unit's CoT connection.
API_KINDS = frozenset({InjectKind.DESIGNATION, InjectKind.TASK, InjectKind.FEED_START, InjectKind.FEED_STOP})


@dataclass(frozen=True, slots=True)
class Enters:
    """Trigger: ``unit`` is reported inside ``area``."""

    unit: str
    area: Area


@dataclass(frozen=True, slots=True)
class TaskAcknowledged:
    """Trigger: the task assigned by inject ``inject`` was acknowledged on the server."""

    inject: str


Trigger = Enters | TaskAcknowledged


@dataclass(frozen=True, slots=True)
class LinkDegrade:
    """A unit's reports delayed, thinned (1 of ``thin`` kept) and cut (all lost) for a while."""

    delay_s: float = 0.0
    thin: int = 1
    cut_s: float = 0.0
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class Inject:
    """One scripted event: at ``at_s``, or ``delay_s`` after ``trigger`` fires (or when asked live)."""

    id: str
    kind: InjectKind
    at_s: float | None = None
    trigger: Trigger | None = None
    delay_s: float = 0.0
    unit: str | None = None
    text: str = ""
    to: str | None = None
    emergency_type: str = "911 Alert"
    position: LatLon | None = None
    marker_type: str = "a-u-G"
    title: str = ""
    category: str = "other"
    assignee: dict[str, str] = field(default_factory=dict)
    feed: str = ""
    url: str = ""
    link: LinkDegrade | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole exercise."""

    id: str
    name: str
    seed: int
    duration_s: float
    units: tuple[Unit, ...]
    injects: tuple[Inject, ...]
    missions: tuple[str, ...] = ()

    def unit(self, unit_id: str) -> Unit:
        """The unit with that id (``KeyError`` if none)."""
        for unit in self.units:
            if unit.id == unit_id:
                return unit
        raise KeyError(unit_id)
