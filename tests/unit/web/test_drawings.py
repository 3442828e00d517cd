"""Shapes, routes and spot markers from ATAK as map geometry and colours (``web.drawings``)."""

from __future__ import annotations

import math

import pytest

from rallypoint.model.cot import Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event, parse_event
from rallypoint.protocol.xmlsafe import strip_declaration
from rallypoint.web.drawings import argb_colour, drawing_of
from tests.support.samples import SAMPLES


def _sample(name: str):  # type: ignore[no-untyped-def]
    return parse_event(strip_declaration((SAMPLES / name).read_bytes()), Limits())


def _event(cot_type: str, detail: str, lat: float = 10.0, lon: float = 20.0):  # type: ignore[no-untyped-def]
    return make_event(uid="u", type=cot_type, how="h-e", time=0, start=0, stale=60_000, point=Point(lat, lon),
                      detail_xml=detail.encode())


def test_argb_integers_become_web_colours() -> None:
    assert argb_colour("-1") == ("#ffffff", 1.0)
    assert argb_colour("-65536") == ("#ff0000", 1.0)
    assert argb_colour("-1761607681") == ("#ffffff", 0.588)  # ATAK's default fill: white, 150/255
    assert argb_colour("16711680") == ("#ff0000", 0.0)
    assert argb_colour("red") is None and argb_colour(None) is None


def test_atak_free_form_is_a_closed_polygon_with_its_vertices() -> None:
    d = drawing_of(_sample("20_atak_export_Drawing_Shapes_Free_Form.xml"))
    assert d is not None and d.geometry == "Polygon" and d.coordinates is not None
    ring = d.coordinates[0]
    assert len(ring) == 7 and ring[0] == ring[-1] == [-77.06616468204862, 38.838231810315555]
    assert (d.stroke, d.fill, d.fill_opacity, d.stroke_width) == ("#ffffff", "#ffffff", 0.588, 4.0)


def test_atak_rectangle_is_closed_even_without_a_repeated_vertex() -> None:
    d = drawing_of(_sample("20_atak_export_Drawing_Shapes_Rectangle.xml"))
    assert d is not None and d.geometry == "Polygon" and d.coordinates is not None
    ring = d.coordinates[0]
    assert len(ring) == 5 and ring[0] == ring[-1] == [-77.06896916307281, 38.83884480020009]


def test_atak_circle_is_a_ring_at_its_radius() -> None:
    event = _sample("20_atak_export_Drawing_Shapes_Circle.xml")
    d = drawing_of(event)
    assert d is not None and d.geometry == "Polygon" and d.coordinates is not None
    ring = d.coordinates[0]
    assert ring[0] == ring[-1] and len(ring) == 65
    for lon, lat in ring[:-1]:
        dy = math.radians(lat - event.point.lat) * 6_371_008.8
        dx = math.radians(lon - event.point.lon) * 6_371_008.8 * math.cos(math.radians(event.point.lat))
        assert math.hypot(dx, dy) == pytest.approx(226.98, rel=0.01)


def test_spot_marker_keeps_its_point_and_takes_its_colour() -> None:
    d = drawing_of(_sample("20_atak_export_Marker_Spot.xml"))
    assert d is not None and d.geometry == "Point" and d.coordinates is None and d.stroke == "#ff0000"


def test_route_is_a_line_through_its_waypoints() -> None:
    links = "".join(f"<link uid='w{i}' type='b-m-p-w' point='{38 + i / 100},{-77 - i / 100}' relation='c'/>"
                    for i in range(3))
    d = drawing_of(_event("b-m-r", links + "<strokeColor value='-16776961'/><contact callsign='R'/>", 0.0, 0.0))
    assert d is not None and d.geometry == "LineString" and d.fill is None
    assert d.coordinates == [[-77.0, 38.0], [-77.01, 38.01], [-77.02, 38.02]] and d.stroke == "#0000ff"


def test_units_and_unreadable_drawings_have_no_drawing() -> None:
    assert drawing_of(_sample("01_sa_pli_atak_civ_taky_fixture.xml")) is None
    assert drawing_of(_sample("20_atak_export_Range_and_Bearing_Line.xml")) is None
    for bad in ("<link point='91,0'/><link point='0,0'/>", "<link point='x,y'/><link point='1,1'/>",
                "<link point='1'/><link point='2,2'/>", "<link point='nan,1'/><link point='1,1'/>",
                "<link point='1,1'/>"):
        assert drawing_of(_event("u-d-f", bad)) is None, bad
    assert drawing_of(_event("u-d-c-c", "<shape><ellipse major='-5' minor='5'/></shape>")) is None
    assert drawing_of(_event("u-d-c-c", "<shape><ellipse major='inf' minor='5'/></shape>")) is None


def test_an_open_line_is_not_filled() -> None:
    d = drawing_of(_event("u-d-f", "<link point='1,1'/><link point='2,2'/><link point='3,1'/>"
                                   "<fillColor value='-1'/>"))
    assert d is not None and d.geometry == "LineString" and d.fill is None


def test_hostile_drawings_stay_points_or_bounded() -> None:
    links = "".join(f"<link point='{i % 80}.5,{i % 170}.5'/>" for i in range(2001))
    assert drawing_of(_event("u-d-f", links)) is None  # more vertices than MAX_VERTICES
    huge = drawing_of(_event("u-d-f", "<link point='1,1'/><link point='2,2'/>"
                                      "<strokeColor value='99999999999999999999999'/><strokeWeight value='1e308'/>"
                                      "<remarks>" + "x" * 5000 + "</remarks>"))
    assert huge is not None and huge.stroke is not None and len(huge.stroke) == 7 and huge.stroke.startswith("#")
    assert huge.stroke_width == 3.0 and huge.remarks is not None and len(huge.remarks) == 2000
    scripted = drawing_of(_event("u-d-f", "<link point='1,1'/><link point='2,2'/><strokeColor value='javascript:x'/>"))
    assert scripted is not None and scripted.stroke is None
