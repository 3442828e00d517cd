"""Markers and routes in the plugin's ``TAKPacketV2`` form, both ways (sans-IO).

Server to mesh: a marker (spot map ``b-m-p-s-m``, waypoint ``b-m-p-w``, checkpoint ``b-m-p-c``,
points of interest ``b-m-p-*`` and 2525 symbols ``a-?-G...`` dropped by a user, not a device's own
SA) becomes a ``Marker`` packet with uid, name, type, position, colour, icon set, remarks and the
dropping user; a route (``b-m-r``) becomes a ``Route`` packet: its first point on the packet's
position and the others as offsets from it (1e-7 degree units), at most 16 points (``truncated``
set beyond). Mesh to server: the same packets back into the same CoT.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from lxml import etree
from meshtastic.protobuf import atak_pb2

from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event
from rallypoint.protocol.xmlsafe import parse_fragment

MAX_LINKS = 16  # the firmware's pool for route links
UNKNOWN = 9_999_999.0
_LIMITS = Limits()
_MARKER_KINDS = {
    "b-m-p-s-m": atak_pb2.Marker.Kind_SpotMap, "b-m-p-w": atak_pb2.Marker.Kind_Waypoint,
    "b-m-p-c": atak_pb2.Marker.Kind_Checkpoint, "b-m-p-w-GOTO": atak_pb2.Marker.Kind_GoToPoint,
    "b-m-p-c-ip": atak_pb2.Marker.Kind_InitialPoint, "b-m-p-c-cp": atak_pb2.Marker.Kind_ContactPoint,
    "b-m-p-s-p-op": atak_pb2.Marker.Kind_ObservationPost, "b-m-p-s-p-i": atak_pb2.Marker.Kind_Spot,
}


def is_marker(event: CotEvent) -> bool:
    """A user-dropped marker (not a device's own position report)."""
    if event.detail.takv:
        return False
    return event.type.startswith("b-m-p-") or (event.type.startswith("a-") and event.how.startswith("h-"))


def detail_of(event: CotEvent) -> etree._Element | None:
    """The event's ``<detail>`` children, parsed (None when it has none)."""
    return parse_fragment(event.detail.xml, _LIMITS) if event.detail.xml else None


def base_packet(event: CotEvent, now_ms: int) -> atak_pb2.TAKPacketV2:
    """A V2 packet with what every item carries: uid, callsign, type, position, stale time, remarks."""
    p = atak_pb2.TAKPacketV2(uid=event.uid, callsign=event.detail.callsign or "")
    p.cot_type_id = atak_pb2.CotType_Other
    name = "CotType_" + event.type.replace("-", "_")
    if name in set(atak_pb2.CotType.keys()):
        p.cot_type_id = atak_pb2.CotType.Value(name)
    else:
        p.cot_type_str = event.type
    p.latitude_i = round(event.point.lat * 1e7)
    p.longitude_i = round(event.point.lon * 1e7)
    p.altitude = round(event.point.hae) if event.point.hae != UNKNOWN else 0
    p.stale_seconds = max(0, (event.stale - now_ms) // 1000)
    detail = detail_of(event)
    remarks = detail.find("remarks") if detail is not None else None
    if remarks is not None and (remarks.text or "").strip():
        p.remarks = remarks.text[:200]
    return p


def marker_packet(event: CotEvent, now_ms: int) -> atak_pb2.TAKPacketV2:
    """A marker event as a V2 ``Marker`` packet."""
    p = base_packet(event, now_ms)
    detail = detail_of(event)
    p.marker.kind = _MARKER_KINDS.get(event.type, atak_pb2.Marker.Kind_Symbol2525 if event.type.startswith("a-")
                                      else atak_pb2.Marker.Kind_Spot)
    if detail is not None:
        color = detail.find("color")
        if color is not None and color.get("argb", "").lstrip("-").isdigit():
            p.marker.color_argb = int(color.get("argb", "0")) & 0xFFFF_FFFF
        icon = detail.find("usericon")
        if icon is not None:
            p.marker.iconset = str(icon.get("iconsetpath", ""))[:80]
        status = detail.find("status")
        p.marker.readiness = status is not None and status.get("readiness") == "true"
    if event.detail.link_uid:
        p.marker.parent_uid = event.detail.link_uid
        p.marker.parent_type = event.detail.link_type or ""
    return p


def route_packet(event: CotEvent, now_ms: int) -> atak_pb2.TAKPacketV2 | None:
    """A route (``b-m-r``) as a V2 ``Route`` packet; None when it has no points."""
    detail = detail_of(event)
    if detail is None:
        return None
    points: list[tuple[float, float, str, str]] = []
    for link in detail.findall("link"):
        parts = str(link.get("point", "")).split(",")
        try:
            lat, lon = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            continue
        points.append((lat, lon, str(link.get("uid", "")), str(link.get("callsign", ""))))
    if not points:
        return None
    p = base_packet(event, now_ms)
    first_lat, first_lon = points[0][0], points[0][1]
    p.latitude_i, p.longitude_i = round(first_lat * 1e7), round(first_lon * 1e7)
    for lat, lon, uid, callsign in points[:MAX_LINKS]:
        link = p.route.links.add(uid=uid[:48], callsign=callsign[:32])
        link.point.lat_delta_i = round(lat * 1e7) - p.latitude_i
        link.point.lon_delta_i = round(lon * 1e7) - p.longitude_i
    p.route.truncated = len(points) > MAX_LINKS
    attrs = detail.find("link_attr")
    if attrs is not None:
        method = "Method_" + str(attrs.get("method", ""))
        if method in set(atak_pb2.Route.Method.keys()):
            p.route.method = atak_pb2.Route.Method.Value(method)
        direction = "Direction_" + str(attrs.get("direction", ""))
        if direction in set(atak_pb2.Route.Direction.keys()):
            p.route.direction = atak_pb2.Route.Direction.Value(direction)
        p.route.prefix = str(attrs.get("prefix", ""))[:8]
    return p


def shrink_route(p: atak_pb2.TAKPacketV2) -> bool:
    """Make a route packet smaller in place (waypoint names first, then its last points); False when it cannot."""
    links = p.route.links
    if any(link.uid or link.callsign for link in links):
        for link in links:
            link.uid = ""
            link.callsign = ""
        return True
    if len(links) > 2:
        del links[-1]
        p.route.truncated = True
        return True
    return False


def item_event(p: atak_pb2.TAKPacketV2, cot_type: str, now_ms: int) -> CotEvent:
    """A received V2 ``Marker`` or ``Route`` packet as CoT (marked as from the mesh)."""
    lat, lon = p.latitude_i / 1e7, p.longitude_i / 1e7
    stale = now_ms + (p.stale_seconds or 86_400) * 1000
    parts = [f"<contact callsign={quoteattr(p.callsign or p.uid)}/>"]
    if p.WhichOneof("payload_variant") == "route":
        kind = cot_type or "b-m-r"
        for link in p.route.links:
            la = (p.latitude_i + link.point.lat_delta_i) / 1e7
            lo = (p.longitude_i + link.point.lon_delta_i) / 1e7
            parts.append(f"<link uid={quoteattr(link.uid)} callsign={quoteattr(link.callsign)} type=\"b-m-p-w\""
                         f" point=\"{la:.7f},{lo:.7f}\" relation=\"c\"/>")
        method = _enum_name(atak_pb2.Route.Method, p.route.method, "Method_")
        direction = _enum_name(atak_pb2.Route.Direction, p.route.direction, "Direction_")
        parts.append(f"<link_attr method={quoteattr(method)} direction={quoteattr(direction)}"
                     f" prefix={quoteattr(p.route.prefix)}/>")
    else:
        kind = cot_type
        m = p.marker
        if m.color_argb:
            parts.append(f"<color argb=\"{m.color_argb - (1 << 32) if m.color_argb >= 1 << 31 else m.color_argb}\"/>")
        if m.iconset:
            parts.append(f"<usericon iconsetpath={quoteattr(m.iconset)}/>")
        if m.parent_uid:
            parts.append(f"<link uid={quoteattr(m.parent_uid)} type={quoteattr(m.parent_type or 'a-f-G-U-C')}"
                         f" relation=\"p-p\"/>")
    if p.remarks:
        parts.append(f"<remarks>{escape(p.remarks)}</remarks>")
    parts.append("<__meshtastic/>")
    return make_event(
        uid=p.uid, type=kind, how="h-g-i-g-o", time=now_ms, start=now_ms, stale=stale,
        point=Point(lat=lat, lon=lon, hae=float(p.altitude) if p.altitude else UNKNOWN, ce=UNKNOWN, le=UNKNOWN),
        detail_xml="".join(parts).encode(), limits=_LIMITS,
    )


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    """An enum value's name without its prefix; ``Unspecified`` for a value of a newer schema."""
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return "Unspecified"
