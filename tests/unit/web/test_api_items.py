"""POST/GET/DELETE /api/items: map items drawn as the caller, in ATAK's shapes, within the caller's groups."""

from __future__ import annotations

from lxml import etree

from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.protocol.xmlsafe import parse_fragment, strip_declaration
from rallypoint.web.drawings import drawing_of
from tests.support.samples import current_sample
from tests.unit.web.test_api_harness import Harness, harness_fixture, marker  # noqa: F401


def _setup(h: Harness) -> tuple[dict[str, str], object]:
    h.add_user("alice", {"A"})
    h.add_user("bob", {"A"})
    return h.bearer("alice"), h.connect("s-f", "uid-f", "FRIEND", {"A"})


def _received(sub: object, cot_type: str) -> list:  # type: ignore[type-arg]
    return [e.event for e in sub.received if e.event.type == cot_type]  # type: ignore[attr-defined]


def _detail(event) -> etree._Element:  # type: ignore[no-untyped-def]
    return parse_fragment(event.detail.xml, Limits())


def test_a_polygon_is_a_closed_free_form_with_its_vertices_and_colours(harness: Harness) -> None:
    alice, friend = _setup(harness)
    body = {"kind": "polygon", "name": "Area <1>", "coordinates": [[20.0, 10.0], [20.1, 10.0], [20.1, 10.1]],
            "color": "#00ff00", "fill_opacity": 0.5, "remarks": "keep out & stay"}
    answer = harness.http.post("/api/items", headers=alice, json=body)
    assert answer.status_code == 201, answer.text
    result = answer.json()
    assert result["type"] == "u-d-f" and result["recipients"] == 1
    [event] = _received(friend, "u-d-f")
    assert event.uid == result["uid"] and event.how == "h-e" and event.detail.callsign == "Area <1>"
    detail = _detail(event)
    assert [link.get("point") for link in detail.iterfind("link")] == ["10.0,20.0", "10.0,20.1", "10.1,20.1",
                                                                        "10.0,20.0"]
    assert detail.find("strokeColor").get("value") == str(0xFF00FF00 - (1 << 32))
    assert detail.find("fillColor").get("value") == str(0x8000FF00 - (1 << 32))
    assert detail.findtext("remarks") == "keep out & stay" and detail.find("archive") is not None
    drawn = drawing_of(event)
    assert drawn is not None and drawn.geometry == "Polygon" and drawn.fill == "#00ff00"
    assert harness.auditor.actions().count("item.put") == 1


def test_marker_circle_line_rectangle_and_route_take_atak_types(harness: Harness) -> None:
    alice, friend = _setup(harness)
    bodies = [
        {"kind": "marker", "name": "RV", "coordinates": [[20.0, 10.0]], "color": "#0000ff"},
        {"kind": "circle", "name": "C", "coordinates": [[20.0, 10.0]], "radius_m": 250.5},
        {"kind": "line", "name": "L", "coordinates": [[20.0, 10.0], [20.2, 10.2]]},
        {"kind": "rectangle", "name": "R", "coordinates": [[20.0, 10.0], [20.1, 10.0], [20.1, 10.1], [20.0, 10.1]]},
        {"kind": "route", "name": "Route 1", "coordinates": [[20.0, 10.0], [20.1, 10.1], [20.2, 10.0]]},
    ]
    for body in bodies:
        assert harness.http.post("/api/items", headers=alice, json=body).status_code == 201
    [spot] = _received(friend, "b-m-p-s-m")
    detail = _detail(spot)
    assert detail.find("color").get("argb") == str(0xFF0000FF - (1 << 32))
    assert detail.find("usericon").get("iconsetpath") == f"COT_MAPPING_SPOTMAP/b-m-p-s-m/{0xFF0000FF - (1 << 32)}"
    assert spot.detail.link_uid == "rallypoint-api-alice" and (spot.point.lat, spot.point.lon) == (10.0, 20.0)
    [circle] = _received(friend, "u-d-c-c")
    ellipse = _detail(circle).find("shape/ellipse")
    assert (ellipse.get("major"), ellipse.get("minor")) == ("250.5", "250.5")
    [line, rect] = _received(friend, "u-d-f") + _received(friend, "u-d-r")
    assert len(_detail(line).findall("link")) == 2 and _detail(line).find("fillColor") is None
    assert len(_detail(rect).findall("link")) == 4
    [route] = _received(friend, "b-m-r")
    links = _detail(route).findall("link")
    assert [(link.get("type"), link.get("callsign"), link.get("point")) for link in links] == [
        ("b-m-p-w", "Route 1 SP", "10.0,20.0"), ("b-m-p-w", "CP1", "10.1,20.1"), ("b-m-p-w", "CP2", "10.0,20.2")]
    assert _detail(route).find("link_attr") is not None
    mine = harness.http.get("/api/items", headers=alice).json()
    assert {m["type"] for m in mine} == {"b-m-p-s-m", "u-d-c-c", "u-d-f", "u-d-r", "b-m-r"}
    assert all(m["drawing"] for m in mine)


def test_bad_items_are_refused_and_nothing_is_sent(harness: Harness) -> None:
    alice, friend = _setup(harness)
    before = len(friend.received)
    bad = [
        ({"kind": "polygon", "name": "P", "coordinates": [[1, 1], [2, 2]]}, 422),
        ({"kind": "marker", "name": "M", "coordinates": [[200, 1]]}, 422),
        ({"kind": "marker", "name": "M", "coordinates": [[1, 95]]}, 422),
        ({"kind": "circle", "name": "C", "coordinates": [[1, 1]]}, 422),
        ({"kind": "marker", "name": "bad\x01", "coordinates": [[1, 1]]}, 422),
        ({"kind": "marker", "name": "M", "coordinates": [[1, 1]], "color": "red"}, 422),
        ({"kind": "hexagon", "name": "M", "coordinates": [[1, 1]]}, 422),
        ({"kind": "marker", "name": "M", "coordinates": [[1, 1]], "uid": "<x/>"}, 422),
        ({"kind": "marker", "name": "M", "coordinates": [[1, 1]], "extra": 1}, 422),
        ({"kind": "line", "name": "L", "coordinates": [[1, 1]] * 501}, 422),
    ]
    for body, status in bad:
        answer = harness.http.post("/api/items", headers=alice, json=body)
        assert answer.status_code == status, (body, answer.text)
    assert harness.http.post("/api/items", headers=alice, content=b"{not json").status_code == 400
    assert harness.http.post("/api/items", json={"kind": "marker", "name": "M",
                                                 "coordinates": [[1, 1]]}).status_code == 401
    assert len(friend.received) == before


def test_only_the_author_replaces_or_deletes_and_the_delete_reaches_receivers(harness: Harness) -> None:
    alice, friend = _setup(harness)
    bob = harness.bearer("bob")
    uid = harness.http.post("/api/items", headers=alice,
                            json={"kind": "marker", "name": "RV", "coordinates": [[20.0, 10.0]]}).json()["uid"]
    stolen = harness.http.post("/api/items", headers=bob,
                               json={"kind": "marker", "name": "X", "coordinates": [[1, 1]], "uid": uid})
    assert stolen.status_code == 403
    assert harness.http.delete(f"/api/items/{uid}", headers=bob).status_code == 403
    moved = harness.http.post("/api/items", headers=alice,
                              json={"kind": "marker", "name": "RV2", "coordinates": [[21.0, 11.0]], "uid": uid})
    assert moved.status_code == 201 and moved.json()["uid"] == uid
    assert harness.ctx.presence.items[uid].event.detail.callsign == "RV2"
    client = harness.http.post("/api/items", headers=alice,
                               json={"kind": "marker", "name": "X", "coordinates": [[1, 1]], "uid": "uid-f"})
    assert client.status_code == 409
    gone = harness.http.delete(f"/api/items/{uid}", headers=alice)
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    [delete] = _received(friend, "t-x-d-d")
    assert delete.detail.link_uid == uid and b"__forcedelete" in delete.detail.xml
    assert uid not in harness.ctx.presence.items
    assert harness.http.delete(f"/api/items/{uid}", headers=alice).status_code == 404
    assert "item.delete" in harness.auditor.actions()


def test_items_of_other_groups_are_not_found(harness: Harness) -> None:
    alice, _ = _setup(harness)
    harness.add_user("carol", {"B"})
    harness.inject(marker("b-item"), "s-b", {"B"}, principal="carol")
    assert harness.http.delete("/api/items/b-item", headers=alice).status_code == 404
    assert harness.http.get("/api/items", headers=alice).json() == []


def test_an_atak_drawing_is_a_polygon_feature_of_the_picture(harness: Harness) -> None:
    alice, _ = _setup(harness)
    raw = current_sample("20_atak_export_Drawing_Shapes_Free_Form.xml", stale_s=86_400 * 365 * 20)
    shape = parse_event(strip_declaration(raw), Limits())
    harness.inject(shape, "s-f", {"A"})
    body = harness.http.get("/api/tracks?format=geojson", headers=alice).json()
    [feature] = [f for f in body["features"] if f["id"] == shape.uid]
    assert feature["geometry"]["type"] == "Polygon" and len(feature["geometry"]["coordinates"][0]) == 7
    props = feature["properties"]
    assert (props["drawing"], props["stroke"], props["fill"], props["fill_opacity"]) == (
        "Polygon", "#ffffff", "#ffffff", 0.588)
    assert props["callsign"] == "Shape 1"


def test_anonymous_callers_list_none_and_cannot_draw(harness: Harness) -> None:
    _setup(harness)
    listed = harness.http.get("/api/items")
    assert listed.status_code == 200 and listed.json() == []
    drawn = harness.http.post("/api/items", json={"kind": "marker", "name": "M", "coordinates": [[1, 1]]})
    assert drawn.status_code == 401
