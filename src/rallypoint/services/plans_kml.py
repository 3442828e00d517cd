"""A plan's map items as KML 2.2, and back (pure; parsing uses the hardened XML rules).

Exported: one ``Placemark`` per area (``Polygon``), route (``LineString``) and objective with a
point (``Point``), each with ``name``, ``description`` and ``ExtendedData`` (``kind``, ``id``); an
area's colour becomes its ``Style``. Phases, assignments, resources and airdrops are not map
overlays in KML's sense: use GeoJSON or a data package to carry the whole plan.

Imported: every ``Placemark`` with a ``Polygon`` (outer ring), ``LineString`` or ``Point``, from any
tool (Google Earth, ATAK's KML export, ...); documents with a DOCTYPE or entities are refused.
"""

from __future__ import annotations

import math
import re

from lxml import etree

from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.model.plan import (
    MAX_ITEMS_PER_KIND,
    MAX_TOTAL_POINTS,
    Area,
    Objective,
    Plan,
    Position,
    Route,
    Waypoint,
    items_of,
)
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xmlsafe import parse_document, reject_markup_declarations, strip_declaration
from rallypoint.services.plans_validate import PlanInvalid, check_plan

MEDIA_TYPE = "application/vnd.google-earth.kml+xml"
KML_NS = "http://www.opengis.net/kml/2.2"
MAX_KML_BYTES = 16 * 1024 * 1024
_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_K = f"{{{KML_NS}}}"


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, _K + tag)
    if text is not None:
        el.text = text
    return el


def _kml_color(color: str, alpha: str) -> str:
    """``#RRGGBB`` as KML's ``aabbggrr``."""
    rgb = color.lstrip("#")[-6:]
    return alpha + rgb[4:6] + rgb[2:4] + rgb[0:2]


def to_kml(plan: Plan, *, name: str = "") -> bytes:
    """The map items of ``plan`` as a KML document."""
    root = etree.Element(_K + "kml", nsmap={None: KML_NS})
    doc = _sub(root, "Document")
    _sub(doc, "name", name or "Plan")
    for kind, item in items_of(plan):
        if not isinstance(item, (Area, Route, Objective)) or (isinstance(item, Objective) and item.point is None):
            continue
        mark = _sub(doc, "Placemark")
        mark.set("id", item.id)
        _sub(mark, "name", item.name)
        _sub(mark, "description", item.description)
        data = _sub(mark, "ExtendedData")
        for key, value in (("kind", kind.value), ("id", item.id)):
            entry = _sub(data, "Data")
            entry.set("name", key)
            _sub(entry, "value", value)
        match item:
            case Area():
                style = _sub(mark, "Style")
                _sub(_sub(style, "LineStyle"), "color", _kml_color(item.color, "ff"))
                _sub(_sub(style, "PolyStyle"), "color", _kml_color(item.color, "60"))
                ring = [*item.vertices]
                if ring[0] != ring[-1]:
                    ring.append(ring[0])
                poly = _sub(mark, "Polygon")
                _sub(_sub(_sub(poly, "outerBoundaryIs"), "LinearRing"), "coordinates",
                     " ".join(f"{v.lon!r},{v.lat!r}" for v in ring))
            case Route():
                _sub(_sub(mark, "LineString"), "coordinates",
                     " ".join(f"{w.lon!r},{w.lat!r}" for w in item.waypoints))
            case Objective(point=point) if point is not None:
                _sub(_sub(mark, "Point"), "coordinates", f"{point.lon!r},{point.lat!r}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def from_kml(raw: bytes) -> Plan:
    """A plan from the placemarks of a KML document (``PlanInvalid`` with the reason)."""
    if len(raw) > MAX_KML_BYTES:
        raise PlanInvalid(f"KML document larger than {MAX_KML_BYTES} bytes")
    try:
        body = strip_declaration(raw)
        reject_markup_declarations(body)
        root = parse_document(body, Limits(max_event_bytes=MAX_KML_BYTES, max_depth=64))
    except (RemoteProtocolError, LimitExceeded) as exc:
        raise PlanInvalid(f"not a KML document we accept: {exc}") from exc
    if etree.QName(root).localname != "kml":
        raise PlanInvalid(f"root element {etree.QName(root).localname!r}, expected kml")
    areas: list[Area] = []
    routes: list[Route] = []
    objectives: list[Objective] = []
    budget = MAX_TOTAL_POINTS
    marks = [el for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname == "Placemark"]
    if len(marks) > 3 * MAX_ITEMS_PER_KIND:
        raise PlanInvalid(f"{len(marks)} placemarks, at most {3 * MAX_ITEMS_PER_KIND}")
    used: set[str] = set()
    for n, mark in enumerate(marks):
        name = (_child_text(mark, "name") or "").strip()
        description = (_child_text(mark, "description") or "").strip()
        data = {d.get("name"): _child_text(d, "value") for d in _children(mark, "ExtendedData", "Data")}
        item_id = _unique(data.get("id") or mark.get("id") or f"item-{n + 1}", used)
        geometry = _geometry(mark)
        if geometry is None:
            continue
        tag, coords_text = geometry
        budget -= coords_text.count(",")
        if budget < 0:
            raise PlanInvalid(f"more than {MAX_TOTAL_POINTS} positions in all; split the plan")
        coords = _coordinates(n, coords_text)
        label = name or item_id
        match tag:
            case "Polygon":
                if len(coords) > 1 and coords[0] == coords[-1]:
                    coords.pop()
                areas.append(Area(id=item_id, name=label, description=description,
                                  vertices=tuple(Position(lat, lon) for lon, lat in coords)))
            case "LineString":
                routes.append(Route(id=item_id, name=label, description=description,
                                    waypoints=tuple(Waypoint(lat, lon) for lon, lat in coords)))
            case _:
                lon, lat = coords[0]
                objectives.append(Objective(id=item_id, name=label, description=description,
                                            point=Position(lat, lon)))
    return check_plan(Plan(areas=tuple(areas), routes=tuple(routes), objectives=tuple(objectives)))


def _children(el: etree._Element, *path: str) -> list[etree._Element]:
    found = [el]
    for step in path:
        found = [c for f in found for c in f if isinstance(c.tag, str) and etree.QName(c).localname == step]
    return found


def _child_text(el: etree._Element, name: str) -> str | None:
    found = _children(el, name)
    return found[0].text if found else None


def _unique(raw: str, used: set[str]) -> str:
    base = _ID_CHARS.sub("-", raw)[:60].strip("-._") or "item"
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    used.add(candidate)
    return candidate


def _geometry(mark: etree._Element) -> tuple[str, str] | None:
    """The first Polygon (outer ring), LineString or Point under a placemark, with its coordinates text."""
    for el in mark.iter():
        if not isinstance(el.tag, str):
            continue
        tag = etree.QName(el).localname
        if tag == "Polygon":
            ring = _children(el, "outerBoundaryIs", "LinearRing", "coordinates")
            if ring:
                return tag, ring[0].text or ""
        elif tag in ("LineString", "Point"):
            text = _child_text(el, "coordinates")
            if text is not None:
                return tag, text
    return None


def _coordinates(n: int, text: str) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for token in text.split():
        parts = token.split(",")
        try:
            lon, lat = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise PlanInvalid(f"placemark {n}: coordinates are 'lon,lat[,alt]' separated by spaces") from None
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise PlanInvalid(f"placemark {n}: coordinates must be finite numbers")
        out.append((lon, lat))
    if not out:
        raise PlanInvalid(f"placemark {n}: no coordinates")
    return out
