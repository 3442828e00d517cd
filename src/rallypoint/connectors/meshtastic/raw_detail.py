"""Generic CoT the plugin's packets carry as XML, mesh to server (sans-IO).

Both packet versions have a fallback for CoT without a typed form. ``TAKPacketV2.raw_detail``
(port 78) holds the content of ``<detail>`` and leaves the rest of the event to the packet's own
fields (uid, type, how, position, callsign, team, role, battery, stale time, remarks), as the
TAKPacket-SDK writes it. ``TAKPacket.detail`` (port 72) sits beside nothing but the sender's
contact, so only a whole ``<event>`` there says where and what: it is taken as that event. A
bare detail in a version 1 packet has no uid, type or position and is refused
(``tak_unsupported``). The XML goes through the same hardened parser as any received CoT; what
it refuses is ``tak_malformed``. Every event made here carries ``<__meshtastic/>``, so it never
goes back into a mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from xml.sax.saxutils import escape, quoteattr

from meshtastic.protobuf import atak_pb2

from rallypoint.connectors.meshtastic.mesh_cot import PLI_STALE_S, UNKNOWN, from_mesh
from rallypoint.connectors.meshtastic.tak import ROLES, TEAMS
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event, parse_event
from rallypoint.protocol.xmlsafe import parse_fragment

MARK = b"<__meshtastic/>"
_LIMITS = Limits()
_T = TypeVar("_T")


def v1_detail_event(xml: bytes) -> CotEvent:
    """A ``TAKPacket.detail`` that holds a whole ``<event>``, as that event (marked as from the mesh)."""
    head = xml.lstrip()[:64]
    if not head.startswith(b"<"):
        raise RemoteProtocolError("tak_malformed", "a TAKPacket detail that is not XML")
    if not head.startswith((b"<?xml", b"<event")):
        raise RemoteProtocolError("tak_unsupported", "a TAKPacket detail without its <event> (no uid, type, position)")
    event = _checked(lambda: parse_event(xml, _LIMITS))
    if from_mesh(event):
        return event
    return _checked(lambda: make_event(
        uid=event.uid, type=event.type, how=event.how, time=event.time, start=event.start, stale=event.stale,
        point=event.point, detail_xml=event.detail.xml + MARK, access=event.access, limits=_LIMITS,
    ))


def v2_raw_detail_event(p: atak_pb2.TAKPacketV2, cot_type: str, now_ms: int) -> CotEvent:
    """A ``TAKPacketV2`` with ``raw_detail``: the packet's fields around its ``<detail>`` content."""
    raw = bytes(p.raw_detail)
    present = {str(child.tag) for child in _checked(lambda: parse_fragment(raw, _LIMITS))} if raw.strip() else set()
    # The packet's fields say what the detail does not say itself (a detail's own <contact> wins).
    parts: list[str] = []
    if p.callsign and "contact" not in present:
        parts.append(f"<contact callsign={quoteattr(p.callsign[:256])}/>")
    team = TEAMS[p.team] if 0 < p.team < len(TEAMS) else ""
    role = ROLES[p.role] if 0 < p.role < len(ROLES) else ""
    if (team or role) and "__group" not in present:
        parts.append(f"<__group name={quoteattr(team or 'Cyan')} role={quoteattr(role or 'Team Member')}/>")
    if p.battery and "status" not in present:
        parts.append(f'<status battery="{min(p.battery, 100)}"/>')
    if (p.speed or p.course) and "track" not in present:
        parts.append(f'<track course="{p.course / 100.0 % 360:.2f}" speed="{p.speed / 100.0:.2f}"/>')
    if p.remarks and "remarks" not in present:
        parts.append(f"<remarks>{escape(p.remarks[:4000])}</remarks>")
    detail = "".join(parts).encode() + raw + (b"" if b"<__meshtastic" in raw else MARK)
    return _checked(lambda: make_event(
        uid=p.uid, type=cot_type, how=_how(p.how), time=now_ms, start=now_ms,
        stale=now_ms + (p.stale_seconds or PLI_STALE_S) * 1000,
        point=Point(lat=p.latitude_i / 1e7, lon=p.longitude_i / 1e7,
                    hae=float(p.altitude) if p.altitude else UNKNOWN, ce=UNKNOWN, le=UNKNOWN),
        detail_xml=detail, limits=_LIMITS,
    ))


def _how(value: int) -> str:
    """The CoT ``how`` of a V2 ``CotHow`` value (``m-g`` when unspecified or of a newer schema)."""
    try:
        name = str(atak_pb2.CotHow.Name(value))
    except ValueError:
        return "m-g"
    return "m-g" if name == "CotHow_Unspecified" else name.removeprefix("CotHow_").replace("_", "-")


def _checked(build: Callable[[], _T]) -> _T:
    """``build()``, with the CoT parser's refusals said as the gateway's ``tak_malformed``."""
    try:
        return build()
    except RemoteProtocolError as exc:
        raise RemoteProtocolError("tak_malformed", f"raw detail: {exc}") from None
