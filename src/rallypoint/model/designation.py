"""Designations: points and areas of interest that others must be able to trust (two-person rule).

A designation is information for people: a casualty location, a hazard, a landing site, a drop
zone, something to watch. Nothing in it triggers any action. It is proposed by one user, visible
only to the proposer's groups and marked unapproved until a second user holding the ``approver``
role approves it (then it is shared with the groups the approver chooses) or rejects it; the
proposer may withdraw it while it is proposed.

Field names are the JSON of the native API (``/api/designations``). Times are epoch milliseconds.
"""

from __future__ import annotations

import enum
import math
from typing import Annotated

import msgspec

MAX_VERTICES = 200
MAX_TITLE = 120
MAX_NOTES = 4000
MAX_REASON = 500
MAX_ATTACHMENTS = 20
MAX_GROUPS = 50
# Metres above the WGS-84 ellipsoid: from the Dead Sea shore to well above any aircraft that would report it.
MIN_HAE = -1000.0
MAX_HAE = 50_000.0
UNKNOWN_HAE = 9999999.0


class Kind(enum.StrEnum):
    """A single point or a closed area (polygon)."""

    POINT = "point"
    AREA = "area"


class Affiliation(enum.StrEnum):
    """Standard identity, as the second atom of a CoT type and MIL-STD-2525's frame."""

    FRIEND = "friend"
    HOSTILE = "hostile"
    NEUTRAL = "neutral"
    UNKNOWN = "unknown"

    @property
    def atom(self) -> str:
        """The CoT affiliation letter (``a-f``, ``a-h``, ``a-n``, ``a-u``)."""
        return {"friend": "f", "hostile": "h", "neutral": "n", "unknown": "u"}[self.value]

    @property
    def argb(self) -> int:
        """The signed ARGB colour ATAK draws an area of this affiliation with (2525 frame colours)."""
        rgb = {"friend": 0x80E0FF, "hostile": 0xFF8080, "neutral": 0xAAFFAA, "unknown": 0xFFFF80}[self.value]
        return (0xFF << 24 | rgb) - (1 << 32)


class Category(enum.StrEnum):
    """What the designation marks; decides the CoT battle dimension of a point."""

    CASUALTY = "casualty"
    HAZARD = "hazard"
    LANDING_SITE = "landing_site"
    DROP_ZONE = "drop_zone"
    WATCH = "watch"
    OBSTACLE = "obstacle"
    VESSEL = "vessel"
    AIRCRAFT = "aircraft"
    OTHER = "other"

    @property
    def dimension(self) -> str:
        """CoT battle dimension: ``A`` air, ``S`` sea surface, ``G`` ground (everything else)."""
        match self:
            case Category.AIRCRAFT:
                return "A"
            case Category.VESSEL:
                return "S"
            case _:
                return "G"


class State(enum.StrEnum):
    """Workflow: proposed -> approved | rejected | withdrawn; the last three are final."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


Lat = Annotated[float, msgspec.Meta(ge=-90, le=90, description="WGS-84 latitude, degrees")]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180, description="WGS-84 longitude, degrees")]
Priority = Annotated[int, msgspec.Meta(ge=1, le=5, description="1 most urgent ... 5 least")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE)]
Notes = Annotated[str, msgspec.Meta(max_length=MAX_NOTES)]
Hash = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 of a data package")]
Group = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
GroupList = Annotated[list[Group], msgspec.Meta(min_length=1, max_length=MAX_GROUPS)]


class Vertex(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A WGS-84 position (degrees)."""

    lat: Lat
    lon: Lon


class Proposal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /api/designations``: give ``point`` or ``polygon`` (3 to 200 vertices), not both."""

    title: Title
    category: Category
    affiliation: Affiliation = Affiliation.UNKNOWN
    priority: Priority = 3
    notes: Notes = ""
    point: Vertex | None = None
    polygon: Annotated[list[Vertex], msgspec.Meta(max_length=MAX_VERTICES)] | None = None
    hae: float | None = None
    attachments: Annotated[list[Hash], msgspec.Meta(max_length=MAX_ATTACHMENTS)] = []
    mission: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None


class Approval(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /api/designations/{id}/approve``: the groups to share with (default: the proposer's)."""

    groups: GroupList | None = None


class Rejection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /api/designations/{id}/reject``: why (shown to the proposer's groups)."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON)]


class Designation(msgspec.Struct, frozen=True):
    """One designation and where it stands in the workflow."""

    id: str
    kind: Kind
    title: str
    category: Category
    affiliation: Affiliation
    priority: int
    notes: str
    point: Vertex
    polygon: tuple[Vertex, ...]
    hae: float | None
    attachments: tuple[str, ...]
    mission: str | None
    proposer: str
    proposer_groups: tuple[str, ...]
    state: State
    proposed_ms: int
    updated_ms: int
    approver: str | None = None
    decided_by: str | None = None
    shared_groups: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def cot_type(self) -> str:
        """``a-<affiliation>-<dimension>`` for a point, ``u-d-f`` (a drawn area) for a polygon."""
        if self.kind is Kind.AREA:
            return "u-d-f"
        return f"a-{self.affiliation.atom}-{self.category.dimension}"


class InvalidDesignation(ValueError):
    """A proposal that cannot be a designation; the message says what to fix."""


def check_proposal(proposal: Proposal) -> None:
    """Checks a schema cannot express: one geometry, finite numbers, a simple polygon, XML-safe text."""
    if (proposal.point is None) == (proposal.polygon is None):
        raise InvalidDesignation("give either point or polygon")
    vertices = [proposal.point] if proposal.point is not None else list(proposal.polygon or [])
    for v in vertices:
        if not (math.isfinite(v.lat) and math.isfinite(v.lon)):
            raise InvalidDesignation("coordinates must be finite numbers")
    if proposal.hae is not None and not (math.isfinite(proposal.hae) and MIN_HAE <= proposal.hae <= MAX_HAE):
        raise InvalidDesignation(f"hae: metres between {MIN_HAE:g} and {MAX_HAE:g}")
    if proposal.polygon is not None:
        check_polygon([(v.lat, v.lon) for v in proposal.polygon])
    for name, text in (("title", proposal.title), ("notes", proposal.notes), ("mission", proposal.mission or "")):
        if not is_plain_text(text):
            raise InvalidDesignation(f"{name}: contains control characters")
    if not proposal.title.strip():
        raise InvalidDesignation("title: must not be blank")


def check_polygon(points: list[tuple[float, float]]) -> None:
    """A simple polygon of 3 to ``MAX_VERTICES`` distinct vertices (closing vertex optional), edges not crossing."""
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]
    if len(points) < 3:
        raise InvalidDesignation("polygon: at least 3 distinct vertices")
    if len(points) > MAX_VERTICES:
        raise InvalidDesignation(f"polygon: at most {MAX_VERTICES} vertices")
    if len(set(points)) != len(points):
        raise InvalidDesignation("polygon: a vertex repeats")
    lons = [lon for _, lon in points]
    if max(lons) - min(lons) > 180:
        raise InvalidDesignation("polygon: areas crossing the 180th meridian are not supported")
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            # Neighbouring edges share a vertex; only the others may not touch at all.
            if j == i + 1 or (i == 0 and j == n - 1):
                continue
            if _segments_touch(*edges[i], *edges[j]):
                raise InvalidDesignation(f"polygon: edges {i + 1} and {j + 1} cross (a self-crossing polygon)")
    if _area2(points) == 0:
        raise InvalidDesignation("polygon: has no area")


def centroid(points: tuple[Vertex, ...]) -> Vertex:
    """The mean of the vertices: where an area's CoT event places its point."""
    return Vertex(lat=sum(v.lat for v in points) / len(points), lon=sum(v.lon for v in points) / len(points))


def is_plain_text(text: str) -> bool:
    """No control characters other than tab and newlines (XML 1.0 cannot carry most of them)."""
    return all(c in "\t\n\r" or ((c.isprintable() or c == " ") and c not in "\ufffe\uffff") for c in text)


def _orient(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> int:
    cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return (cross > 0) - (cross < 0)


def _on_segment(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _segments_touch(
    p1: tuple[float, float], p2: tuple[float, float], q1: tuple[float, float], q2: tuple[float, float]
) -> bool:
    o1, o2, o3, o4 = _orient(p1, p2, q1), _orient(p1, p2, q2), _orient(q1, q2, p1), _orient(q1, q2, p2)
    if o1 != o2 and o3 != o4:
        return True
    return (
        (o1 == 0 and _on_segment(p1, p2, q1)) or (o2 == 0 and _on_segment(p1, p2, q2))
        or (o3 == 0 and _on_segment(q1, q2, p1)) or (o4 == 0 and _on_segment(q1, q2, p2))
    )


def _area2(points: list[tuple[float, float]]) -> float:
    n = len(points)
    return sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1] for i in range(n))
