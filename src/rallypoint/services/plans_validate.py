"""Checks a plan once, at the edge: limits, finite numbers, polygon geometry, phase order and references.

Every failure is a :class:`PlanInvalid` naming the item and what to fix. Work is bounded by the
limits in ``model.plan``, which are checked before any geometry: a route of 100,000 waypoints is
refused by its count, never walked. The self-crossing test is ``services.plans_geometry``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import msgspec
import numpy as np

from rallypoint.model.plan import (
    MAX_AIRDROPS,
    MAX_AREA_VERTICES,
    MAX_DEPENDENCIES,
    MAX_ID_CHARS,
    MAX_ITEMS_PER_KIND,
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
    MAX_ROUTE_WAYPOINTS,
    MAX_TEXT_CHARS,
    MAX_TOTAL_POINTS,
    Area,
    ItemKind,
    Phase,
    Plan,
    Position,
    Route,
    items_of,
)
from rallypoint.protocol.validate import is_xml_text
from rallypoint.services.missions_access import MissionError
from rallypoint.services.plans_geometry import first_crossing
from rallypoint.validation_errors import InvalidJson, decode_json

# Waypoint names are checkpoint labels; a route of 2,000 of them must still fit in one CoT event.
MAX_WAYPOINT_NAME_CHARS = 40
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COLOR = re.compile(r"^#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")
# Phases may span decades, not millennia: year 1970 to 2200 in epoch milliseconds.
_MAX_TIME_MS = 7_258_118_400_000


class PlanInvalid(MissionError):
    """A plan (or plan request) refused; the message says which item and why (HTTP 400)."""

    status = 400


def decode_plan(raw: bytes) -> Plan:
    """A JSON document as a :class:`Plan`, checked (``PlanInvalid`` with the reason)."""
    try:
        plan = decode_json(raw, Plan, subject="the plan")
    except InvalidJson as exc:
        raise PlanInvalid(exc.detail if exc.malformed else f"invalid plan: {exc.detail}") from exc
    except RecursionError as exc:
        raise PlanInvalid("the plan is nested too deeply") from exc
    return check_plan(plan)


def convert_plan(data: object) -> Plan:
    """A parsed JSON value (dicts and lists) as a checked :class:`Plan`."""
    try:
        plan = msgspec.convert(data, Plan)
    except msgspec.ValidationError as exc:
        raise PlanInvalid(f"invalid plan: {exc}") from exc
    return check_plan(plan)


def check_reason(reason: str) -> str:
    """A change reason: required, one short printable text."""
    text = reason.strip()
    if not text:
        raise PlanInvalid("a reason for the change is required")
    if len(text) > MAX_REASON_CHARS or not is_xml_text(text):
        raise PlanInvalid(f"reason: at most {MAX_REASON_CHARS} characters XML can carry")
    return text


def check_plan(plan: Plan) -> Plan:
    """``plan`` if it is acceptable, else ``PlanInvalid`` naming the first problem found."""
    _check_counts(plan)
    seen: set[str] = set()
    for kind, item in items_of(plan):
        where = f"{kind.value[:-1]} {item.id!r}"
        _check_id(item.id, kind)
        if item.id in seen:
            raise PlanInvalid(f"{where}: id used twice in the plan (ids are unique across all items)")
        seen.add(item.id)
        for field in ("name", "description", "team", "role", "kind", "unit", "method", "color"):
            value = getattr(item, field, None)
            if isinstance(value, str):
                _check_text(where, field, value, MAX_NAME_CHARS if field != "description" else MAX_TEXT_CHARS)
    for objective in plan.objectives:
        if objective.point is not None:
            _check_position(f"objective {objective.id!r}", objective.point)
        if not 1 <= objective.priority <= 5:
            raise PlanInvalid(f"objective {objective.id!r}: priority must be 1 (highest) to 5")
    for area in plan.areas:
        if not _COLOR.match(area.color):
            raise PlanInvalid(f"area {area.id!r}: color must be #RRGGBB or #AARRGGBB")
        check_area(area)
    for route in plan.routes:
        _check_route(route)
    _check_phases(plan.phases)
    for assignment in plan.assignments:
        where = f"assignment {assignment.id!r}"
        if not assignment.team.strip():
            raise PlanInvalid(f"{where}: team (a uid, callsign or group) is required")
        if assignment.phase is not None and assignment.phase not in {p.id for p in plan.phases}:
            raise PlanInvalid(f"{where}: no phase {assignment.phase[:MAX_ID_CHARS]!r} in the plan")
        _check_refs(where, assignment.items, seen)
    for resource in plan.resources:
        where = f"resource {resource.id!r}"
        if not (math.isfinite(resource.quantity) and 0 <= resource.quantity <= 1e9):
            raise PlanInvalid(f"{where}: quantity must be a number from 0 to 1e9")
        if resource.weight_kg is not None and not (math.isfinite(resource.weight_kg)
                                                   and 0 <= resource.weight_kg <= 1e7):
            raise PlanInvalid(f"{where}: weight_kg must be a number from 0 to 1e7")
    return plan


def _check_counts(plan: Plan) -> None:
    for kind in ItemKind:
        count = len(getattr(plan, kind.value))
        limit = MAX_AIRDROPS if kind is ItemKind.AIRDROP else MAX_ITEMS_PER_KIND
        if count > limit:
            raise PlanInvalid(f"{kind.value}: {count} items, at most {limit}")
    for route in plan.routes:
        if len(route.waypoints) > MAX_ROUTE_WAYPOINTS:
            raise PlanInvalid(f"route {route.id[:MAX_ID_CHARS]!r}: {len(route.waypoints)} waypoints, "
                              f"at most {MAX_ROUTE_WAYPOINTS}; split it into several routes")
    for area in plan.areas:
        if len(area.vertices) > MAX_AREA_VERTICES:
            raise PlanInvalid(f"area {area.id[:MAX_ID_CHARS]!r}: {len(area.vertices)} vertices, "
                              f"at most {MAX_AREA_VERTICES}")
    total = sum(len(r.waypoints) for r in plan.routes) + sum(len(a.vertices) for a in plan.areas)
    if total > MAX_TOTAL_POINTS:
        raise PlanInvalid(f"the plan has {total} vertices and waypoints in all, at most {MAX_TOTAL_POINTS}")


def _check_id(item_id: str, kind: ItemKind) -> None:
    if len(item_id) > MAX_ID_CHARS or not _ID.match(item_id):
        raise PlanInvalid(f"{kind.value[:-1]} id {item_id[:MAX_ID_CHARS]!r}: 1-{MAX_ID_CHARS} letters, digits, "
                          "'.', '_' or '-', starting with a letter or digit")


def _check_text(where: str, field: str, value: str, limit: int) -> None:
    if len(value) > limit or not is_xml_text(value):
        raise PlanInvalid(f"{where}: {field} must be at most {limit} characters XML can carry")


def _check_position(where: str, p: Position | object) -> None:
    lat = getattr(p, "lat", math.nan)
    lon = getattr(p, "lon", math.nan)
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise PlanInvalid(f"{where}: position ({lat}, {lon}) is not latitude -90..90, longitude -180..180")


def _check_refs(where: str, refs: Iterable[str], known: set[str]) -> None:
    refs = tuple(refs)
    if len(refs) > MAX_ITEMS_PER_KIND:
        raise PlanInvalid(f"{where}: at most {MAX_ITEMS_PER_KIND} references")
    for ref in refs:
        if ref not in known:
            raise PlanInvalid(f"{where}: no item {ref[:MAX_ID_CHARS]!r} in the plan")


def _check_route(route: Route) -> None:
    where = f"route {route.id!r}"
    if len(route.waypoints) < 2:
        raise PlanInvalid(f"{where}: at least 2 waypoints")
    for i, wp in enumerate(route.waypoints):
        _check_position(f"{where} waypoint {i}", wp)
        _check_text(where, f"waypoint {i} name", wp.name, MAX_WAYPOINT_NAME_CHARS)


def check_area(area: Area) -> None:
    """Refuse an area that is not a simple closed polygon (``PlanInvalid``).

    A closing vertex equal to the first is allowed; at least three distinct vertices; no repeated
    consecutive vertex; no two edges that are not neighbours may touch or cross.
    """
    where = f"area {area.id!r}"
    ring = list(area.vertices)
    for i, v in enumerate(ring):
        _check_position(f"{where} vertex {i}", v)
    if len(ring) >= 2 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(ring) < 3:
        raise PlanInvalid(f"{where}: a polygon needs at least 3 distinct vertices")
    pts = np.array([(v.lon, v.lat) for v in ring], dtype=float)
    nxt = np.roll(pts, -1, axis=0)
    if np.any(np.all(pts == nxt, axis=1)):
        raise PlanInvalid(f"{where}: the same vertex twice in a row")
    crossing = first_crossing(pts, nxt)
    if crossing is not None:
        i, j = crossing
        raise PlanInvalid(f"{where}: the polygon crosses itself (edge {i}-{(i + 1) % len(ring)} meets edge "
                          f"{j}-{(j + 1) % len(ring)}); list the vertices in order around the outline")
    area2 = float(np.sum(pts[:, 0] * nxt[:, 1] - nxt[:, 0] * pts[:, 1]))
    if abs(area2) < 1e-18:
        raise PlanInvalid(f"{where}: the polygon has no area (its vertices are on one line)")


def _check_phases(phases: tuple[Phase, ...]) -> None:
    by_id = {p.id: p for p in phases}
    for phase in phases:
        where = f"phase {phase.id!r}"
        for t in (phase.start_ms, phase.end_ms):
            if not 0 <= t <= _MAX_TIME_MS:
                raise PlanInvalid(f"{where}: times must be epoch milliseconds between 1970 and 2200")
        if phase.end_ms < phase.start_ms:
            raise PlanInvalid(f"{where}: ends before it starts")
        if len(phase.depends_on) > MAX_DEPENDENCIES:
            raise PlanInvalid(f"{where}: at most {MAX_DEPENDENCIES} dependencies")
        for dep in phase.depends_on:
            if dep not in by_id:
                raise PlanInvalid(f"{where}: depends on {dep[:MAX_ID_CHARS]!r}, which is not a phase of the plan")
            if dep == phase.id:
                raise PlanInvalid(f"{where}: depends on itself")
    cycle = _cycle(by_id)
    if cycle:
        raise PlanInvalid("phases depend on each other in a cycle: " + " -> ".join(cycle))
    for phase in phases:
        for dep in phase.depends_on:
            if by_id[dep].end_ms > phase.start_ms:
                raise PlanInvalid(f"phase {phase.id!r}: starts before phase {dep!r}, which it depends on, ends")


def _cycle(by_id: dict[str, Phase]) -> list[str]:
    """A dependency cycle among phases (ids, first repeated at the end), or [] (iterative DFS)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    for root in by_id:
        if root in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            deps = by_id[node].depends_on
            if index < len(deps):
                stack.append((node, index + 1))
                dep = deps[index]
                if state.get(dep) == 1:
                    return [*path[path.index(dep):], dep]
                if dep not in state:
                    stack.append((dep, 0))
            else:
                state[node] = 2
                path.pop()
    return []
