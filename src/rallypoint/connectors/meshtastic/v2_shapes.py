"""Drawn shapes, range-and-bearing lines and aircraft in the plugin's ``TAKPacketV2`` form, both ways (sans-IO).

Server to mesh: a drawing (``u-d-*``, ranging circles and bullseyes ``u-r-b-*``) becomes a
``DrawnShape``: ellipses as radii in centimetres and a whole-degree angle, polygons, rectangles
and lines as at most 32 vertices, each an offset from the packet's position in 1e-7 degrees
(``truncated`` set when more were drawn); colours as exact ARGB. A range-and-bearing line
(``u-rb-a``) becomes a ``RangeAndBearing``: its anchor as an offset, range in centimetres, bearing
in 1/100 degree. An aircraft track (``a-?-A...``, not placed by hand, not a TAK device's own SA)
becomes an ``AircraftTrack`` with ICAO address, registration, flight, category and squawk.
Mesh to server: the same packets back into the same CoT.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from lxml import etree
from meshtastic.protobuf import atak_pb2

from rallypoint.connectors.meshtastic.v2_items import UNKNOWN, base_packet, detail_of
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event

MAX_VERTICES = 32  # the firmware's pool for shape vertices
_DRAFT_VERTICES = 12  # DrawnShape.vertices (repeated CotGeoPoint) in the schema's earlier draft
_LIMITS = Limits()
_SHAPE = atak_pb2.DrawnShape
SHAPE_KINDS = {
    "u-d-c-c": _SHAPE.Kind_Circle, "u-d-r": _SHAPE.Kind_Rectangle, "u-d-f": _SHAPE.Kind_Freeform,
    "u-d-f-m": _SHAPE.Kind_Telestration, "u-d-p": _SHAPE.Kind_Polygon, "u-r-b-c-c": _SHAPE.Kind_RangingCircle,
    "u-r-b-bullseye": _SHAPE.Kind_Bullseye, "u-d-c-e": _SHAPE.Kind_Ellipse, "u-d-v": _SHAPE.Kind_Vehicle2D,
    "u-d-v-m": _SHAPE.Kind_Vehicle3D,
}
_ELLIPSES = {_SHAPE.Kind_Circle, _SHAPE.Kind_Ellipse, _SHAPE.Kind_RangingCircle, _SHAPE.Kind_Bullseye}
_BEARING_REFS = {"M": 1, "T": 2, "G": 3}
_BULLSEYE_FLAGS = ("rangeRingVisible", "hasRangeRings", "edgeToCenter", "mils")
_ICAO_RE = re.compile(r"ICAO:\s*([0-9A-Fa-f]{6})\b")
_UID_ICAO_RE = re.compile(r"(?:^|[-.])([0-9A-Fa-f]{6})$")
_REMARK_FIELDS = {"registration": r"REG:\s*(\S+)", "flight": r"Flight:\s*(\S+)", "aircraft_type": r"Type:\s*(\S+)",
                  "category": r"Category:\s*(\S+)"}


def is_aircraft(event: CotEvent) -> bool:
    """An air track from a feed or a sensor: ``a-?-A...``, not placed by hand, not a TAK device's own SA."""
    atoms = event.type.split("-")
    return (len(atoms) > 2 and atoms[0] == "a" and atoms[2] == "A" and not event.how.startswith("h-")
            and not event.detail.takv)


# -- server to mesh --------------------------------------------------------------------------
def shape_packet(event: CotEvent, now_ms: int) -> atak_pb2.TAKPacketV2 | None:
    """A drawing as a ``DrawnShape`` packet; None when it has no geometry (no ellipse, no vertices)."""
    detail = detail_of(event)
    kind = SHAPE_KINDS.get(event.type)
    if detail is None or kind is None:
        return None
    p = base_packet(event, now_ms)
    s = p.shape
    s.kind = kind
    ellipse = detail.find("shape/ellipse")
    if kind in _ELLIPSES:
        if ellipse is None:
            return None
        s.major_cm = _cm(ellipse.get("major"))
        s.minor_cm = _cm(ellipse.get("minor"))
        s.angle_deg = round(_number(ellipse.get("angle"), 360.0)) % 361
    else:
        points = _points(detail)
        if len(points) < 2:
            return None
        for lat, lon in points[:MAX_VERTICES]:
            s.vertex_lat_deltas.append(round(lat * 1e7) - p.latitude_i)
            s.vertex_lon_deltas.append(round(lon * 1e7) - p.longitude_i)
        s.truncated = len(points) > MAX_VERTICES
    stroke, fill = _argb(detail, "strokeColor"), _argb(detail, "fillColor")
    s.style = {(True, True): _SHAPE.StyleMode_StrokeAndFill, (True, False): _SHAPE.StyleMode_StrokeOnly,
               (False, True): _SHAPE.StyleMode_FillOnly}.get((stroke is not None, fill is not None), 0)
    s.stroke_argb, s.fill_argb = stroke or 0, fill or 0
    s.stroke_weight_x10 = _weight(detail)
    labels = detail.find("labels_on")
    s.labels_on = labels is not None and labels.get("value") == "true"
    bullseye = detail.find("bullseye")
    if kind == _SHAPE.Kind_Bullseye and bullseye is not None:
        s.bullseye_distance_dm = round(_number(bullseye.get("distance"), 0.0) * 10)
        s.bullseye_bearing_ref = _BEARING_REFS.get(str(bullseye.get("bearingRef", "")), 0)
        s.bullseye_flags = sum(1 << i for i, name in enumerate(_BULLSEYE_FLAGS) if bullseye.get(name) == "true")
        s.bullseye_uid_ref = str(bullseye.get("bullseyeUID", ""))[:48]
    return p


def rab_packet(event: CotEvent, now_ms: int) -> atak_pb2.TAKPacketV2 | None:
    """A range-and-bearing line (``u-rb-a``) as a ``RangeAndBearing`` packet; None without range and bearing."""
    detail = detail_of(event)
    range_el = detail.find("range") if detail is not None else None
    bearing_el = detail.find("bearing") if detail is not None else None
    if detail is None or range_el is None or bearing_el is None:
        return None
    p = base_packet(event, now_ms)
    r = p.rab
    r.range_cm = _cm(range_el.get("value"))
    r.bearing_cdeg = round(_number(bearing_el.get("value"), 0.0) * 100) % 36000
    for link in detail.findall("link"):
        point = _point(link)
        if point is not None:
            r.anchor.lat_delta_i = round(point[0] * 1e7) - p.latitude_i
            r.anchor.lon_delta_i = round(point[1] * 1e7) - p.longitude_i
            r.anchor_uid = str(link.get("uid", ""))[:48]
            break
    r.stroke_argb = _argb(detail, "strokeColor") or 0
    r.stroke_weight_x10 = _weight(detail)
    return p


def aircraft_packet(event: CotEvent, now_ms: int) -> atak_pb2.TAKPacketV2:
    """An air track as an ``AircraftTrack`` packet (speed cm/s, course 1/100 degree)."""
    p = base_packet(event, now_ms)
    p.remarks = ""  # the receiver writes remarks from the fields below
    if event.detail.speed is not None:
        p.speed = max(0, round(event.detail.speed * 100))
    if event.detail.course is not None:
        p.course = round(event.detail.course * 100) % 36000
    a = p.aircraft
    detail = detail_of(event)
    remarks_el = detail.find("remarks") if detail is not None else None
    remarks = (remarks_el.text or "") if remarks_el is not None else ""
    aircot = detail.find("_aircot_") if detail is not None else None
    if aircot is not None:
        a.icao, a.registration = str(aircot.get("icao", ""))[:8], str(aircot.get("reg", ""))[:16]
        a.flight, a.category = str(aircot.get("flight", ""))[:16], str(aircot.get("cat", ""))[:4]
        a.cot_host_id = str(aircot.get("cot_host_id", ""))[:48]
    for field, pattern in _REMARK_FIELDS.items():
        if not getattr(a, field) and (found := re.search(pattern, remarks)):
            setattr(a, field, found.group(1)[:16])
    if not a.icao:
        found = _ICAO_RE.search(remarks) or _UID_ICAO_RE.search(event.uid)
        a.icao = found.group(1).upper() if found else ""
    squawk = re.search(r"Squawk:\s*([0-7]{4})\b", remarks)
    a.squawk = int(squawk.group(1)) if squawk else 0
    return p


def shrink(p: atak_pb2.TAKPacketV2) -> bool:
    """Make a shape or ranging packet smaller in place (remarks, then every other vertex); False when it cannot."""
    if p.remarks:
        p.remarks = ""
        return True
    if p.WhichOneof("payload_variant") != "shape" or len(p.shape.vertex_lat_deltas) <= 3:
        return False
    s = p.shape
    keep = [i for i in range(len(s.vertex_lat_deltas)) if i % 2 == 0 or i == len(s.vertex_lat_deltas) - 1]
    lats, lons = [s.vertex_lat_deltas[i] for i in keep], [s.vertex_lon_deltas[i] for i in keep]
    del s.vertex_lat_deltas[:], s.vertex_lon_deltas[:]
    s.vertex_lat_deltas.extend(lats)
    s.vertex_lon_deltas.extend(lons)
    s.truncated = True
    return True


# -- mesh to server --------------------------------------------------------------------------
def geometry_event(p: atak_pb2.TAKPacketV2, cot_type: str, now_ms: int) -> CotEvent:
    """A received ``DrawnShape``, ``RangeAndBearing`` or ``AircraftTrack`` packet as CoT (marked as from the mesh)."""
    which = p.WhichOneof("payload_variant")
    parts = [f"<contact callsign={quoteattr(p.callsign or p.uid)}/>"]
    how, stale_s = "h-e", 86_400
    if which == "shape":
        parts += _shape_detail(p)
    elif which == "rab":
        r = p.rab
        if r.HasField("anchor") or r.anchor_uid:
            lat, lon = _absolute(p, r.anchor.lat_delta_i, r.anchor.lon_delta_i)
            parts.append(f"<link uid={quoteattr(r.anchor_uid)} relation=\"p-p\" type=\"b-m-p-w\""
                         f" point=\"{lat:.7f},{lon:.7f}\"/>")
        parts.append(f"<range value=\"{r.range_cm / 100:.2f}\"/><bearing value=\"{r.bearing_cdeg / 100:.2f}\"/>")
        parts += _style(r.stroke_argb, None, r.stroke_weight_x10)
    else:
        a = p.aircraft
        how, stale_s = "m-g", 60
        parts[0] = f"<contact callsign={quoteattr(a.flight or p.callsign or a.icao or p.uid)}/>"
        parts.append(f"<track course=\"{p.course / 100:.2f}\" speed=\"{p.speed / 100:.2f}\"/>")
        parts.append(f"<_aircot_ icao={quoteattr(a.icao)} reg={quoteattr(a.registration)}"
                     f" flight={quoteattr(a.flight)} cat={quoteattr(a.category)}"
                     f" cot_host_id={quoteattr(a.cot_host_id)}/>")
        said = [("ICAO", a.icao), ("REG", a.registration), ("Flight", a.flight), ("Type", a.aircraft_type),
                ("Squawk", f"{a.squawk:04d}" if a.squawk else ""), ("Category", a.category)]
        parts.append(f"<remarks>{escape(' '.join(f'{k}: {v}' for k, v in said if v))}</remarks>")
    if p.remarks and which != "aircraft":
        parts.append(f"<remarks>{escape(p.remarks)}</remarks>")
    parts.append("<__meshtastic/>")
    return make_event(
        uid=p.uid, type=cot_type, how=how, time=now_ms, start=now_ms,
        stale=now_ms + (p.stale_seconds or stale_s) * 1000,
        point=Point(lat=p.latitude_i / 1e7, lon=p.longitude_i / 1e7,
                    hae=float(p.altitude) if p.altitude else UNKNOWN, ce=UNKNOWN, le=UNKNOWN),
        detail_xml="".join(parts).encode(), limits=_LIMITS,
    )


def _shape_detail(p: atak_pb2.TAKPacketV2) -> list[str]:
    s = p.shape
    parts: list[str] = []
    if s.kind in _ELLIPSES:
        parts.append(f"<shape><ellipse major=\"{s.major_cm / 100:.2f}\" minor=\"{s.minor_cm / 100:.2f}\""
                     f" angle=\"{s.angle_deg}\"/></shape>")
    for dlat, dlon in _vertices(s):
        lat, lon = _absolute(p, dlat, dlon)
        parts.append(f"<link point=\"{lat:.7f},{lon:.7f}\"/>")
    if s.kind == _SHAPE.Kind_Bullseye:
        ref = {v: k for k, v in _BEARING_REFS.items()}.get(s.bullseye_bearing_ref, "M")
        flags = "".join(f" {name}=\"{'true' if s.bullseye_flags >> i & 1 else 'false'}\""
                        for i, name in enumerate(_BULLSEYE_FLAGS))
        parts.append(f"<bullseye distance=\"{s.bullseye_distance_dm / 10:.1f}\" bearingRef=\"{ref}\"{flags}"
                     f" bullseyeUID={quoteattr(s.bullseye_uid_ref)}/>")
    stroke = s.stroke_argb if s.style in (0, _SHAPE.StyleMode_StrokeOnly, _SHAPE.StyleMode_StrokeAndFill) else None
    fill = s.fill_argb if s.style in (_SHAPE.StyleMode_FillOnly, _SHAPE.StyleMode_StrokeAndFill) or (
        s.style == 0 and s.fill_argb) else None
    parts += _style(stroke, fill, s.stroke_weight_x10)
    parts.append(f"<labels_on value=\"{'true' if s.labels_on else 'false'}\"/>")
    return parts


def _vertices(s: atak_pb2.DrawnShape) -> list[tuple[int, int]]:
    """A shape's vertex offsets: the released schema's columns, else the earlier draft's repeated
    ``CotGeoPoint`` (field 12, which senders built on that draft still write)."""
    if s.vertex_lat_deltas:
        return list(zip(s.vertex_lat_deltas, s.vertex_lon_deltas, strict=False))
    points: list[tuple[int, int]] = []
    unknown = UnknownFieldSet(s)
    for i in range(len(unknown)):  # indexable and sized; its stub does not say it iterates
        field = unknown[i]
        if field.field_number == _DRAFT_VERTICES and field.wire_type == 2 and len(points) < MAX_VERTICES:
            point = atak_pb2.CotGeoPoint()
            try:
                point.ParseFromString(field.data)
            except DecodeError:
                continue  # one bad vertex is left out, not the shape
            points.append((point.lat_delta_i, point.lon_delta_i))
    return points


def _style(stroke: int | None, fill: int | None, weight_x10: int) -> list[str]:
    parts = []
    if stroke is not None:
        parts.append(f"<strokeColor value=\"{_signed(stroke)}\"/>")
    if weight_x10:
        parts.append(f"<strokeWeight value=\"{weight_x10 / 10:.1f}\"/>")
    if fill is not None:
        parts.append(f"<fillColor value=\"{_signed(fill)}\"/>")
    return parts


def _absolute(p: atak_pb2.TAKPacketV2, dlat: int, dlon: int) -> tuple[float, float]:
    lat = max(-90.0, min(90.0, (p.latitude_i + dlat) / 1e7))
    lon = (p.longitude_i + dlon) / 1e7
    if not -180.0 <= lon <= 180.0:
        lon = (lon + 180.0) % 360.0 - 180.0  # offsets are not bounded on the wire: wrap round the globe
    return lat, lon


def _signed(argb: int) -> int:
    """ATAK writes colours as signed 32-bit integers."""
    return argb - (1 << 32) if argb >= 1 << 31 else argb


def _points(detail: etree._Element) -> list[tuple[float, float]]:
    return [point for link in detail.findall("link") if (point := _point(link)) is not None]


def _point(link: etree._Element) -> tuple[float, float] | None:
    parts = str(link.get("point", "")).split(",")
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        return None
    return (lat, lon) if -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 else None


def _argb(detail: etree._Element, tag: str) -> int | None:
    element = detail.find(tag)
    if element is None:
        return None
    try:
        return int(str(element.get("value", "0"))) & 0xFFFF_FFFF
    except ValueError:
        return None


def _weight(detail: etree._Element) -> int:
    element = detail.find("strokeWeight")
    return max(0, min(1000, round(_number(element.get("value") if element is not None else None, 0.0) * 10)))


def _number(text: str | None, default: float) -> float:
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return value if value == value and abs(value) < 1e9 else default  # NaN and absurd sizes: the default


def _cm(text: str | None) -> int:
    return max(0, min(0xFFFF_FFFF, round(_number(text, 0.0) * 100)))
