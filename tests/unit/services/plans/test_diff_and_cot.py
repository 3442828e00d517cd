"""Plan diffs (machine-readable, stable) and the CoT drawings of plan items."""

from __future__ import annotations

import msgspec
from lxml import etree

from rallypoint.model.plan import ItemKind, Plan, Position
from rallypoint.protocol.xml_codec import encode_event
from rallypoint.services.plans_cot import argb, delete_event, drawn_uids, item_events, waypoint_uid
from rallypoint.services.plans_diff import diff_plans
from tests.unit.services.plans.sample import full_plan


def test_diff_lists_added_removed_and_changed_items_with_their_fields() -> None:
    before = full_plan()
    moved = msgspec.structs.replace(before.areas[0], name="Sector A (north)", color="#00ff00")
    after = msgspec.structs.replace(before, areas=(moved,), routes=(), resources=(
        *before.resources, msgspec.structs.replace(before.resources[0], id="food", name="Food")))
    diff = diff_plans(before, after, from_version=1, to_version=2)
    assert [(r.kind, r.id) for r in diff.added] == [(ItemKind.RESOURCE, "food")]
    assert [(r.kind, r.id) for r in diff.removed] == [(ItemKind.ROUTE, "ingress")]
    assert [(c.kind, c.id, c.fields) for c in diff.changed] == [(ItemKind.AREA, "sector-a", ("name", "color"))]
    as_json = msgspec.json.decode(msgspec.json.encode(diff))
    assert as_json["from_version"] == 1 and as_json["to_version"] == 2
    assert as_json["changed"][0]["before"]["name"] == "Sector A"
    assert as_json["changed"][0]["after"]["name"] == "Sector A (north)"
    assert diff_plans(after, after).empty
    everything = diff_plans(Plan(), before)
    assert len(everything.added) == 8 and not everything.removed


def test_an_area_is_a_closed_free_form_shape_with_link_points() -> None:
    plan = full_plan()
    (event,) = item_events(ItemKind.AREA, plan.areas[0], prefix="rp-plan.g", now_ms=1_000, dests=("ANDROID-1",))
    assert event.uid == "rp-plan.g.sector-a" and event.type == "u-d-f"
    assert [d.uid for d in event.detail.dests] == ["ANDROID-1"]
    detail = etree.fromstring(b"<detail>" + event.detail.xml + b"</detail>")
    points = [link.get("point") for link in detail.findall("link")]
    assert len(points) == 5 and points[0] == points[-1] == "39.0,-120.0"
    assert detail.find("contact").get("callsign") == "Sector A"
    assert detail.find("strokeColor").get("value") == str(argb("#ff8800"))
    assert b"<marti>" not in encode_event(event)


def test_a_route_is_b_m_r_with_waypoint_links_in_order() -> None:
    plan = full_plan()
    (event,) = item_events(ItemKind.ROUTE, plan.routes[0], prefix="p", now_ms=1_000)
    assert event.type == "b-m-r" and (event.point.lat, event.point.lon) == (39.0, -120.01)
    detail = etree.fromstring(b"<detail>" + event.detail.xml + b"</detail>")
    links = detail.findall("link")
    assert [link.get("type") for link in links] == ["b-m-p-w"] * 3
    assert [link.get("callsign") for link in links] == ["Trailhead", "CP2", "Ridge"]
    uids = [link.get("uid") for link in links]
    assert [u.split(".")[1] for u in uids] == ["0", "1", "2"] and len({u.split(".")[0] for u in uids}) == 1
    assert uids[0] == waypoint_uid("p", "ingress", 0) != waypoint_uid("q", "ingress", 0)
    assert detail.find("link_attr") is not None


def test_objectives_with_a_point_are_markers_and_others_are_not_drawn() -> None:
    plan = full_plan()
    (marker,) = item_events(ItemKind.OBJECTIVE, plan.objectives[0], prefix="p", now_ms=1_000)
    assert marker.type == "b-m-p-s-m" and marker.point.lat == 39.01
    assert item_events(ItemKind.OBJECTIVE, plan.objectives[1], prefix="p", now_ms=1_000) == []
    assert item_events(ItemKind.PHASE, plan.phases[0], prefix="p", now_ms=1_000) == []
    moved = msgspec.structs.replace(plan.objectives[0], point=Position(39.5, -120.5))
    assert drawn_uids(ItemKind.OBJECTIVE, moved, "p") == [("p.obj-1", "b-m-p-s-m")]


def test_a_delete_names_its_target_and_forces_the_delete() -> None:
    event = delete_event("p.sector-a", "u-d-f", now_ms=5_000, dests=("ANDROID-1",))
    assert event.type == "t-x-d-d" and event.detail.link_uid == "p.sector-a"
    assert b"__forcedelete" in event.detail.xml


def test_colours_are_signed_argb() -> None:
    assert argb("#ffffff") == -1
    assert argb("#ff0000") == -65536
    assert argb("#80ff0000") == -2130771968
