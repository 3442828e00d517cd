"""Plan checks: limits, geometry, phase order and references, each refused with a clear reason."""

from __future__ import annotations

import json
import math

import msgspec
import pytest

from rallypoint.model.plan import Area, Phase, Plan, PlanPatch, Position, Route, Waypoint, apply_patch
from rallypoint.services.plans_validate import PlanInvalid, check_area, check_plan, check_reason, decode_plan
from tests.unit.services.plans.sample import SQUARE, full_plan


def area(*vertices: tuple[float, float], item_id: str = "a") -> Area:
    return Area(id=item_id, name="A", vertices=tuple(Position(lat, lon) for lat, lon in vertices))


def test_a_full_plan_passes() -> None:
    plan = full_plan()
    assert check_plan(plan) is plan


@pytest.mark.parametrize("closed", [False, True])
def test_a_square_is_a_simple_polygon_open_or_closed(closed: bool) -> None:
    ring = [(v.lat, v.lon) for v in SQUARE]
    check_area(area(*ring, *(ring[:1] if closed else [])))


@pytest.mark.parametrize(("vertices", "words"), [
    ([(0, 0), (0, 1), (1, 0), (1, 1)], "crosses itself"),           # a bow tie
    ([(0, 0), (0, 2), (1, 2), (1, 1), (0, 1)], "crosses itself"),   # an edge touching another
    ([(0, 0), (0, 1)], "at least 3"),
    ([(0, 0), (0, 1), (0, 2)], "no area"),
    ([(0, 0), (0, 1), (0, 1), (1, 1)], "twice in a row"),
    ([(0, 0), (0, 1), (91, 1)], "latitude"),
    ([(0, 0), (0, math.nan), (1, 1)], "latitude"),
])
def test_bad_polygons_are_refused_with_the_reason(vertices: list[tuple[float, float]], words: str) -> None:
    with pytest.raises(PlanInvalid, match=words):
        check_area(area(*vertices))


def test_a_thousand_vertex_polygon_passes() -> None:
    n = 1000
    check_area(area(*[(math.sin(2 * math.pi * i / n), math.cos(2 * math.pi * i / n)) for i in range(n)]))


def test_100000_waypoints_are_refused_by_count_before_any_other_check() -> None:
    route = {"id": "long", "name": "Long", "waypoints": [{"lat": 0.0, "lon": i * 1e-5} for i in range(100_000)]}
    raw = json.dumps({"routes": [route]}).encode()
    with pytest.raises(PlanInvalid, match="100000 waypoints, at most 2000"):
        decode_plan(raw)


@pytest.mark.parametrize(("plan", "words"), [
    (Plan(phases=(Phase(id="a", name="A", start_ms=10, end_ms=5),)), "ends before it starts"),
    (Plan(phases=(Phase(id="a", name="A", start_ms=0, end_ms=5, depends_on=("b",)),
                  Phase(id="b", name="B", start_ms=0, end_ms=5, depends_on=("a",)))), "cycle: a -> b -> a"),
    (Plan(phases=(Phase(id="a", name="A", start_ms=0, end_ms=5, depends_on=("a",)),)), "depends on itself"),
    (Plan(phases=(Phase(id="a", name="A", start_ms=0, end_ms=5, depends_on=("zz",)),)), "not a phase"),
    (Plan(phases=(Phase(id="a", name="A", start_ms=0, end_ms=50),
                  Phase(id="b", name="B", start_ms=10, end_ms=60, depends_on=("a",)))), "starts before phase 'a'"),
    (Plan(phases=(Phase(id="a", name="A", start_ms=-1, end_ms=5),)), "between 1970 and 2200"),
    (Plan(routes=(Route(id="r", name="R", waypoints=(Waypoint(0, 0),)),)), "at least 2 waypoints"),
    (Plan(routes=(Route(id="r", name="R", waypoints=(Waypoint(0, 0), Waypoint(-100, 0))),)), "latitude"),
    (Plan(areas=(area((0, 0), (0, 1), (1, 1), item_id="x"),), routes=(
        Route(id="x", name="R", waypoints=(Waypoint(0, 0), Waypoint(1, 0))),)), "id used twice"),
    (Plan(areas=(area((0, 0), (0, 1), (1, 1), item_id="bad id"),)), "letters, digits"),
    (Plan(areas=(msgspec.structs.replace(area((0, 0), (0, 1), (1, 1)), color="red"),)), "#RRGGBB"),
])
def test_bad_plans_are_refused_with_the_reason(plan: Plan, words: str) -> None:
    with pytest.raises(PlanInvalid, match=words):
        check_plan(plan)


def test_references_must_name_items_of_the_plan() -> None:
    plan = full_plan()
    bad = msgspec.structs.replace(plan, assignments=(msgspec.structs.replace(plan.assignments[0], items=("nope",)),))
    with pytest.raises(PlanInvalid, match="no item 'nope'"):
        check_plan(bad)


@pytest.mark.parametrize(("raw", "words"), [
    (b"{", "JSON"),
    (b'{"areas": [{"id": "a", "name": "A", "vertices": [{"lat": "x", "lon": 0}]}]}', "areas"),
    (b'{"routes": [], "extra": 1}', "extra"),
    (b'{"resources": [{"id": "r", "name": "R", "quantity": 1e300}]}', "quantity"),
])
def test_bad_documents_are_refused_with_the_reason(raw: bytes, words: str) -> None:
    with pytest.raises(PlanInvalid, match=words):
        decode_plan(raw)


def test_a_reason_is_required() -> None:
    assert check_reason("  moved sector A  ") == "moved sector A"
    with pytest.raises(PlanInvalid, match="reason"):
        check_reason(" ")


def test_a_patch_replaces_adds_and_removes_by_id() -> None:
    plan = full_plan()
    renamed = msgspec.structs.replace(plan.areas[0], name="Sector A2")
    extra = area((1, 1), (1, 2), (2, 2), item_id="sector-b")
    patched = apply_patch(plan, PlanPatch(upsert=Plan(areas=(renamed, extra)), remove=("ingress",)))
    assert [a.name for a in patched.areas] == ["Sector A2", "A"]
    assert patched.routes == ()
    assert patched.phases == plan.phases
