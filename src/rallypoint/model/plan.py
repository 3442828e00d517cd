"""Operation plans inside Data Sync missions: objectives, areas, routes, phases, assignments, loads.

A plan belongs to one mission and is versioned: every change stores a whole new :class:`Plan` as a
:class:`PlanVersion` (author, time, reason), so any two versions can be compared and any old one
restored. Items of every kind share one id space within a plan (ids also name their CoT uids).

Positions are WGS-84 degrees; times are epoch milliseconds (UTC). The structs here only describe;
``services.plans_validate`` checks a plan once at the edge (limits, geometry, phase order).
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from rallypoint.model.airdrop import AirdropPlan, PlanRequest

# Limits: generous for real operations, small enough that checking a plan stays fast.
MAX_ITEMS_PER_KIND = 500
MAX_AREA_VERTICES = 1_000
MAX_ROUTE_WAYPOINTS = 2_000
MAX_TOTAL_POINTS = 50_000
MAX_AIRDROPS = 10
MAX_ID_CHARS = 64
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 4_000
MAX_REASON_CHARS = 500
MAX_DEPENDENCIES = 50


class Position(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A WGS-84 position (degrees)."""

    lat: float
    lon: float


class Waypoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One waypoint of a route; ``name`` is its checkpoint label (default ``CP<n>``)."""

    lat: float
    lon: float
    name: str = ""


class Objective(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the operation must achieve; with a ``point`` it shows on the map as a marker."""

    id: str
    name: str
    description: str = ""
    point: Position | None = None
    priority: int = 3


class Area(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A polygon (search sector, exclusion zone, ...): a ring of vertices, closed from the last to the first."""

    id: str
    name: str
    vertices: tuple[Position, ...]
    description: str = ""
    color: str = "#3388ff"


class Route(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A route through waypoints, in order."""

    id: str
    name: str
    waypoints: tuple[Waypoint, ...]
    description: str = ""
    method: str = "Walking"


class Phase(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A phase on the timeline; it starts after the phases it ``depends_on``."""

    id: str
    name: str
    start_ms: int
    end_ms: int
    depends_on: tuple[str, ...] = ()
    description: str = ""


class Assignment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A team or unit (uid, callsign or group name) given work in the plan.

    ``items`` names the plan items (areas, routes, objectives, loads) it is assigned to; ``phase``
    the phase it works in.
    """

    id: str
    team: str
    role: str = ""
    phase: str | None = None
    items: tuple[str, ...] = ()


class Resource(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A resource or load: what, how many, and optionally its weight and who carries it."""

    id: str
    name: str
    kind: str = "supply"
    quantity: float = 1.0
    unit: str = "each"
    weight_kg: float | None = None
    assigned_to: str | None = None


class AirdropItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A cargo airdrop attached to the plan: the planner's request and the server's result.

    The server computes ``result`` from ``request`` whenever the request changes; a result sent by a
    client is ignored.
    """

    id: str
    name: str
    request: PlanRequest
    result: AirdropPlan | None = None


class Plan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The content of one plan version."""

    objectives: tuple[Objective, ...] = ()
    areas: tuple[Area, ...] = ()
    routes: tuple[Route, ...] = ()
    phases: tuple[Phase, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    resources: tuple[Resource, ...] = ()
    airdrops: tuple[AirdropItem, ...] = ()


class ItemKind(enum.StrEnum):
    """The kinds of plan items (the field of :class:`Plan` holding them)."""

    OBJECTIVE = "objectives"
    AREA = "areas"
    ROUTE = "routes"
    PHASE = "phases"
    ASSIGNMENT = "assignments"
    RESOURCE = "resources"
    AIRDROP = "airdrops"


PlanItem = Objective | Area | Route | Phase | Assignment | Resource | AirdropItem


def items_of(plan: Plan) -> list[tuple[ItemKind, PlanItem]]:
    """Every item of ``plan`` with its kind, in field order."""
    found: list[tuple[ItemKind, PlanItem]] = []
    for kind in ItemKind:
        found.extend((kind, item) for item in getattr(plan, kind.value))
    return found


class PlanVersion(msgspec.Struct, frozen=True):
    """One stored version of a mission's plan: who changed it, when, why, and the whole plan after."""

    mission_guid: str
    version: int
    author: str
    time_ms: int
    reason: str
    plan: Plan
    reverted_from: int | None = None


class VersionInfo(msgspec.Struct, frozen=True):
    """A version without its plan (for listings)."""

    version: int
    author: str
    time_ms: int
    reason: str
    reverted_from: int | None = None


def info_of(version: PlanVersion) -> VersionInfo:
    """The listing entry of ``version``."""
    return VersionInfo(version=version.version, author=version.author, time_ms=version.time_ms,
                       reason=version.reason, reverted_from=version.reverted_from)


class ItemRef(msgspec.Struct, frozen=True):
    """An item added or removed between two versions (``item``: one of the :data:`PlanItem` structs)."""

    kind: ItemKind
    id: str
    # Any, not the union: untagged struct unions cannot be decoded, and diffs are only ever encoded.
    item: Any


class ItemChange(msgspec.Struct, frozen=True):
    """An item present in both versions with different content; ``fields`` lists what differs."""

    kind: ItemKind
    id: str
    fields: tuple[str, ...]
    before: Any
    after: Any


class PlanDiff(msgspec.Struct, frozen=True):
    """What changed from version ``from_version`` to ``to_version`` (machine-readable)."""

    from_version: int
    to_version: int
    added: tuple[ItemRef, ...]
    removed: tuple[ItemRef, ...]
    changed: tuple[ItemChange, ...]

    @property
    def empty(self) -> bool:
        """True when the two versions hold the same plan."""
        return not (self.added or self.removed or self.changed)


class PlanPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A partial change: items of ``upsert`` replace the items with their ids (or are added), ``remove`` deletes."""

    upsert: Plan = Plan()
    remove: tuple[str, ...] = ()


def apply_patch(plan: Plan, patch: PlanPatch) -> Plan:
    """``plan`` with ``patch`` applied (unchecked: check the result). Unknown ids in ``remove`` are ignored."""
    gone = set(patch.remove)
    fields: dict[str, tuple[PlanItem, ...]] = {}
    for kind in ItemKind:
        current: list[PlanItem] = [i for i in getattr(plan, kind.value) if i.id not in gone]
        for new in getattr(patch.upsert, kind.value):
            at = next((n for n, old in enumerate(current) if old.id == new.id), None)
            if at is None:
                current.append(new)
            else:
                current[at] = new
        fields[kind.value] = tuple(current)
    return msgspec.structs.replace(plan, **fields)
