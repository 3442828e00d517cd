"""TAK drawings as map geometry: what the picture draws for shapes, routes and spot markers.

ATAK sends a free-form shape (``u-d-f``) or a rectangle (``u-d-r``) as ``<link point="lat,lon"/>``
vertices, a circle (``u-d-c-c``) as ``<shape><ellipse major minor/></shape>`` around the event's
point, a route (``b-m-r``) as ``<link point=... type="b-m-p-w"/>`` waypoints, and colours as signed
32-bit ARGB integers (``<strokeColor value>``, ``<fillColor value>``, ``<color argb>`` or
``<color value>``). :func:`drawing_of` turns those into a GeoJSON geometry (``[lon, lat]``) and
web colours; everything else (units, markers without a colour) has no drawing.

A drawing that cannot be read (a malformed vertex, too few of them) is not drawn as a shape: its
event still shows as a point, and the reason is counted by the caller through ``None``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec
from lxml import etree

from rallypoint.errors import RallypointError
from rallypoint.model.cot import CotEvent
from rallypoint.model.fix import has_fix
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xmlsafe import parse_fragment

FREEFORM = "u-d-f"
RECTANGLE = "u-d-r"
CIRCLE = "u-d-c-c"
ROUTE = "b-m-r"
SPOT_MARKER = "b-m-p-s-m"
# Vertices a circle is drawn with, and at most how many vertices of any drawing are kept.
CIRCLE_VERTICES = 64
MAX_VERTICES = 2000
_EARTH_RADIUS_M = 6_371_008.8
_LIMITS = Limits()


class Drawing(msgspec.Struct, frozen=True):
    """How a map item is drawn: a GeoJSON geometry and its colours (``#rrggbb`` with an opacity)."""

    # "Point": a spot marker keeps its event's point; LineString and Polygon come in ``coordinates``.
    geometry: Literal["Point", "LineString", "Polygon"]
    coordinates: list[Any] | None
    stroke: str | None = None
    stroke_opacity: float = 1.0
    stroke_width: float = 3.0
    fill: str | None = None
    fill_opacity: float = 0.0
    remarks: str | None = None


def is_drawing_type(cot_type: str) -> bool:
    """Whether ``cot_type`` is a shape, route or spot marker the picture draws with its own style."""
    return cot_type.startswith(("u-d-f", "u-d-r", "u-d-c", ROUTE)) or cot_type == SPOT_MARKER


def argb_colour(value: str | None) -> tuple[str, float] | None:
    """A signed or unsigned 32-bit ARGB integer as (``#rrggbb``, opacity 0-1); None when unreadable."""
    if value is None:
        return None
    try:
        number = int(value.strip()) & 0xFFFFFFFF
    except ValueError:
        return None
    alpha = (number >> 24) & 0xFF
    return f"#{number & 0xFFFFFF:06x}", round(alpha / 255, 3)


def drawing_of(event: CotEvent) -> Drawing | None:
    """The drawing of a shape, route or spot marker event; None for anything else or when unreadable."""
    if not is_drawing_type(event.type) or not event.detail.xml:
        return None
    try:
        detail = parse_fragment(event.detail.xml, _LIMITS)
    except (RallypointError, ValueError):
        return None
    stroke = _colour(detail, "strokeColor") or _colour(detail, "color")
    fill = _colour(detail, "fillColor")
    width = _number(detail.find("strokeWeight"), "value")
    remarks = detail.findtext("remarks")
    # A spot marker keeps its point: only its colour and remarks are drawn.
    style = Drawing(
        geometry="Point", coordinates=None,
        stroke=stroke[0] if stroke else None, stroke_opacity=stroke[1] if stroke else 1.0,
        stroke_width=width if width is not None and 0 < width <= 50 else 3.0,
        fill=fill[0] if fill else None, fill_opacity=fill[1] if fill else 0.0,
        remarks=remarks.strip()[:2000] if remarks and remarks.strip() else None,
    )
    if event.type == SPOT_MARKER:
        return style
    if event.type.startswith("u-d-c"):
        ring = _circle(event, detail)
        return None if ring is None else msgspec.structs.replace(style, geometry="Polygon", coordinates=[ring])
    vertices = _vertices(detail)
    if vertices is None or len(vertices) < 2:
        return None
    closed = event.type.startswith(RECTANGLE) or (len(vertices) > 3 and vertices[0] == vertices[-1])
    if closed:
        if vertices[0] != vertices[-1]:
            vertices.append(vertices[0])
        return msgspec.structs.replace(style, geometry="Polygon", coordinates=[vertices])
    return msgspec.structs.replace(style, geometry="LineString", coordinates=vertices, fill=None)


def _colour(detail: etree._Element, tag: str) -> tuple[str, float] | None:
    element = detail.find(tag)
    if element is None:
        return None
    return argb_colour(element.get("value", element.get("argb")))


def _number(element: etree._Element | None, name: str) -> float | None:
    if element is None:
        return None
    try:
        value = float(element.get(name, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _vertices(detail: etree._Element) -> list[list[float]] | None:
    """``[lon, lat]`` of every ``<link point>`` in order; None when one of them is not a position."""
    out: list[list[float]] = []
    for link in detail.iterfind("link"):
        text = link.get("point")
        if text is None:
            continue
        parts = text.split(",")
        try:
            lat, lon = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            return None
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        out.append([lon, lat])
        if len(out) > MAX_VERTICES:
            return None
    return out


def _circle(event: CotEvent, detail: etree._Element) -> list[list[float]] | None:
    """The ring of ``<shape><ellipse major minor angle/>`` (metres) around the event's point."""
    ellipse = detail.find("shape/ellipse")
    major, minor = _number(ellipse, "major"), _number(ellipse, "minor")
    point = event.point
    if major is None or minor is None or not has_fix(point.lat, point.lon):
        return None
    if not (0 < major <= 20_000_000 and 0 < minor <= 20_000_000):
        return None
    # ATAK's major and minor are radii; the angle turns the major axis from north.
    angle = math.radians(_number(ellipse, "angle") or 0.0)
    lat0 = math.radians(point.lat)
    ring: list[list[float]] = []
    for i in range(CIRCLE_VERTICES):
        t = 2 * math.pi * i / CIRCLE_VERTICES
        north, east = major * math.cos(t), minor * math.sin(t)
        north, east = (north * math.cos(angle) - east * math.sin(angle),
                       north * math.sin(angle) + east * math.cos(angle))
        lat = point.lat + math.degrees(north / _EARTH_RADIUS_M)
        lon = point.lon + math.degrees(east / (_EARTH_RADIUS_M * max(math.cos(lat0), 1e-6)))
        ring.append([round(((lon + 180) % 360) - 180, 7), round(max(-90.0, min(90.0, lat)), 7)])
    ring.append(ring[0])
    return ring
