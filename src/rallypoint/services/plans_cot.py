"""A plan's map items as CoT, drawn the way ATAK draws and exports them (pure).

* an area is a free-form shape ``u-d-f``: its vertices as ``<link point='lat,lon'/>``, the first
  repeated at the end to close it, with stroke and fill colours (signed ARGB integers);
* a route is ``b-m-r`` with one ``<link uid type='b-m-p-w' point callsign relation='c'/>`` per
  waypoint, in order, and ATAK's ``<link_attr>`` route attributes (positions to 7 decimals);
* an objective with a point is a spot marker ``b-m-p-s-m``;
* an airdrop is the airdrop planner's drawings (``services.airdrop.cot.plan_events``).

Uids are ``<prefix>.<item id>`` (airdrops add ``.carp``, ``.dz``, ``.footprint``), so a changed item
replaces its drawing and a removed one is erased with ``t-x-d-d`` (``__forcedelete``). Phases,
assignments and resources are not map items. ``dests`` addresses the events (``<marti><dest uid/>``).
"""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import quoteattr

from rallypoint.model.cot import CotEvent, Point
from rallypoint.model.cot_type import DELETE
from rallypoint.model.plan import AirdropItem, Area, ItemKind, Objective, PlanItem, Route
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event
from rallypoint.services.airdrop.cot import plan_events

AREA_TYPE = "u-d-f"
ROUTE_TYPE = "b-m-r"
WAYPOINT_TYPE = "b-m-p-w"
MARKER_TYPE = "b-m-p-s-m"
STALE_S = 7 * 24 * 3600
AIRDROP_PARTS = (("carp", "b-m-p-s-m"), ("dz", "u-d-f"), ("footprint", "u-d-c-e"))
_WHITE = -1
_RED = -65536


def argb(color: str, alpha: int = 255) -> int:
    """``#RRGGBB`` or ``#AARRGGBB`` as ATAK's signed 32-bit ARGB integer (white if unreadable)."""
    text = color.lstrip("#")
    try:
        value = int(text, 16)
    except ValueError:
        return _WHITE
    if len(text) == 6:
        value |= alpha << 24
    elif len(text) != 8:
        return _WHITE
    return value - (1 << 32) if value >= 1 << 31 else value


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _marti(dests: tuple[str, ...]) -> str:
    if not dests:
        return ""
    return "<marti>" + "".join(f"<dest uid={quoteattr(d)}/>" for d in dests) + "</marti>"


def _contact(callsign: str, remarks: str) -> str:
    return f"<contact callsign={quoteattr(callsign)}/><remarks>{_text(remarks)}</remarks>"


def item_uid(prefix: str, item_id: str) -> str:
    """The CoT uid of a plan item."""
    return f"{prefix}.{item_id}"


def waypoint_uid(prefix: str, route_id: str, index: int) -> str:
    """The uid of a route's waypoint: ``<8 hex digits naming the route>.<index>``.

    Short, since a route carries up to 2,000 of them in one event; the digits are a hash of the
    route's own uid, so waypoints of different routes and missions do not share uids.
    """
    return f"{hashlib.blake2b(item_uid(prefix, route_id).encode(), digest_size=4).hexdigest()}.{index}"


def _deg(value: float) -> str:
    # 7 decimals are about a centimetre: enough for any map, and keeps long routes within an event's size.
    return repr(round(value, 7))


def drawn_uids(kind: ItemKind, item: PlanItem, prefix: str) -> list[tuple[str, str]]:
    """``(uid, type)`` of every drawing ``item`` makes (empty for items not on the map)."""
    uid = item_uid(prefix, item.id)
    match item:
        case Area():
            return [(uid, AREA_TYPE)]
        case Route():
            return [(uid, ROUTE_TYPE)]
        case Objective(point=point) if point is not None:
            return [(uid, MARKER_TYPE)]
        case AirdropItem(result=result) if result is not None:
            parts = AIRDROP_PARTS if result.dispersion is not None else AIRDROP_PARTS[:2]
            return [(f"{uid}.{suffix}", cot_type) for suffix, cot_type in parts]
    return []


def item_events(kind: ItemKind, item: PlanItem, *, prefix: str, now_ms: int,
                dests: tuple[str, ...] = (), limits: Limits | None = None) -> list[CotEvent]:
    """The drawings of one plan item (none for items not on the map).

    Raises ``LimitExceeded`` when a drawing would be larger than ``limits`` allow (default: the
    stream's event size).
    """
    uid = item_uid(prefix, item.id)
    stale = now_ms + STALE_S * 1000
    marti = _marti(dests)

    def event(cot_type: str, lat: float, lon: float, detail: str) -> CotEvent:
        return make_event(uid=uid, type=cot_type, how="h-e", time=now_ms, start=now_ms, stale=stale,
                          point=Point(lat, lon), detail_xml=(detail + marti).encode(), limits=limits)

    match item:
        case Area():
            ring = [*item.vertices]
            if ring[0] != ring[-1]:
                ring.append(ring[0])
            lat = sum(v.lat for v in ring[:-1]) / (len(ring) - 1)
            lon = sum(v.lon for v in ring[:-1]) / (len(ring) - 1)
            links = "".join(f"<link point='{_deg(v.lat)},{_deg(v.lon)}'/>" for v in ring)
            style = (f"<strokeColor value='{argb(item.color)}'/><strokeWeight value='3.0'/>"
                     f"<fillColor value='{argb(item.color, 0x60)}'/><labels_on value='true'/>")
            return [event(AREA_TYPE, lat, lon, links + style + _contact(item.name, item.description) + "<archive/>")]
        case Route():
            links = "".join(
                f"<link uid={quoteattr(waypoint_uid(prefix, item.id, i))} type='{WAYPOINT_TYPE}' "
                f"point='{_deg(w.lat)},{_deg(w.lon)}' "
                f"callsign={quoteattr(w.name or f'CP{i + 1}')} relation='c'/>"
                for i, w in enumerate(item.waypoints))
            attrs = (f"<link_attr planningmethod='Infil' color='{_WHITE}' method={quoteattr(item.method)} "
                     "prefix='CP' type='On Foot' stroke='3' direction='Infil' routetype='Primary' "
                     "order='Ascending Check Points'/>")
            first = item.waypoints[0]
            return [event(ROUTE_TYPE, first.lat, first.lon,
                          links + attrs + "<strokeColor value='-1'/><strokeWeight value='3.0'/>"
                          + _contact(item.name, item.description) + "<archive/>")]
        case Objective(point=point) if point is not None:
            return [event(MARKER_TYPE, point.lat, point.lon,
                          _contact(item.name, f"Objective (priority {item.priority}). {item.description}".strip())
                          + f"<color argb='{_RED}'/><usericon iconsetpath='COT_MAPPING_SPOTMAP/{MARKER_TYPE}/{_RED}'/>"
                          + "<archive/>")]
        case AirdropItem(result=result) if result is not None:
            drawn = plan_events(result, uid_prefix=uid, name=item.name, now_ms=now_ms, stale_s=STALE_S)
            if not dests:
                return drawn
            return [make_event(uid=e.uid, type=e.type, how=e.how, time=e.time, start=e.start, stale=e.stale,
                               point=e.point, detail_xml=e.detail.xml + marti.encode()) for e in drawn]
    return []


def delete_event(uid: str, target_type: str, *, now_ms: int, dests: tuple[str, ...] = ()) -> CotEvent:
    """``t-x-d-d`` erasing the drawing ``uid`` from TAK clients' maps."""
    detail = (f"<link uid={quoteattr(uid)} relation='none' type={quoteattr(target_type)}/>"
              f"<__forcedelete/>{_marti(dests)}")
    return make_event(uid=f"{uid}.delete", type=DELETE, how="h-e", time=now_ms, start=now_ms,
                      stale=now_ms + 60_000, point=Point(0.0, 0.0), detail_xml=detail.encode())
