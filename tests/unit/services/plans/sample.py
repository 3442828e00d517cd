"""A plan using every kind of item, shared by the plan tests."""

from __future__ import annotations

from rallypoint.model.airdrop import Aircraft, DropZone, Load, PlanRequest
from rallypoint.model.plan import (
    AirdropItem,
    Area,
    Assignment,
    Objective,
    Phase,
    Plan,
    Position,
    Resource,
    Route,
    Waypoint,
)

SQUARE = (Position(39.00, -120.00), Position(39.00, -119.98), Position(39.02, -119.98), Position(39.02, -120.00))
H = 3_600_000


def airdrop_request() -> PlanRequest:
    return PlanRequest(
        drop_zone=DropZone(pi=(39.01, -119.99), length_m=800.0, width_m=400.0, axis_deg=270.0),
        aircraft=Aircraft(altitude_agl_m=300.0, ground_speed_kt=130.0),
        load=Load(rod_sl_mps=7.0, weight_kg=500.0),
    )


def full_plan(*, with_airdrop: bool = False) -> Plan:
    return Plan(
        objectives=(Objective(id="obj-1", name="Find the hikers", point=Position(39.01, -119.99), priority=1),
                    Objective(id="obj-2", name="Keep the road open")),
        areas=(Area(id="sector-a", name="Sector A", vertices=SQUARE, description="grid search", color="#ff8800"),),
        routes=(Route(id="ingress", name="Ingress", waypoints=(Waypoint(39.0, -120.01, "Trailhead"),
                                                                Waypoint(39.005, -120.005),
                                                                Waypoint(39.01, -120.0, "Ridge"))),),
        phases=(Phase(id="p1", name="Move in", start_ms=1_700_000_000_000, end_ms=1_700_000_000_000 + H),
                Phase(id="p2", name="Search", start_ms=1_700_000_000_000 + H, end_ms=1_700_000_000_000 + 5 * H,
                      depends_on=("p1",))),
        assignments=(Assignment(id="as-1", team="SAR-ALPHA", role="search", phase="p2", items=("sector-a",)),),
        resources=(Resource(id="water", name="Water", kind="supply", quantity=40.0, unit="l", weight_kg=40.0,
                            assigned_to="SAR-ALPHA"),),
        airdrops=(AirdropItem(id="drop-1", name="Supply drop", request=airdrop_request()),) if with_airdrop else (),
    )
