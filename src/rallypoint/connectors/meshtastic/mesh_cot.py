"""Mesh messages said as CoT, and CoT said as mesh messages (sans-IO).

Inbound: a plugin position (``TakMessage`` PLI) becomes the user's own SA (``a-f-G-U-C`` with
contact, ``__group`` team and role, status, track); a plain node position becomes a contact
``MESH-!a1b2c3d4``; a chat becomes a GeoChat (``b-t-f``) to All Chat Rooms or to the addressed
user. Outbound: a TAK user's SA and GeoChat become ``TakMessage``s for ``tak.py`` to pack.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from rallypoint.connectors.meshtastic.tak import Kind, TakMessage
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.timefmt import format_time
from rallypoint.protocol.validate import is_xml_text
from rallypoint.protocol.xml_codec import make_event
from rallypoint.protocol.xmlsafe import parse_fragment

ALL_CHAT_ROOMS = "All Chat Rooms"
UNKNOWN = 9_999_999.0
PLI_STALE_S = 600  # mesh positions come every few minutes; they stay on maps ten of them
CHAT_STALE_S = 86_400
_LIMITS = Limits()


def node_uid(node_num: int) -> str:
    """The CoT uid of a Meshtastic node without an ATAK uid: ``MESH-!a1b2c3d4``."""
    return f"MESH-!{node_num & 0xFFFF_FFFF:08x}"


def _clean(text: str) -> str:
    """Text XML can carry (control characters dropped), for names and chat lines from the mesh."""
    return "".join(c for c in text if is_xml_text(c))


def position_event(msg: TakMessage, *, uid: str, now_ms: int) -> CotEvent:
    """The SA (position) event of a mesh user or node."""
    callsign = _clean(msg.callsign) or uid
    detail = [f"<contact callsign={quoteattr(callsign)} endpoint=\"*:-1:stcp\"/>"]
    if msg.team or msg.role:
        detail.append(f"<__group name={quoteattr(msg.team or 'Cyan')} role={quoteattr(msg.role or 'Team Member')}/>")
    if msg.battery is not None:
        detail.append(f"<status battery=\"{int(msg.battery)}\"/>")
    if msg.speed is not None or msg.course is not None:
        detail.append(f"<track course=\"{(msg.course or 0.0) % 360:.1f}\" speed=\"{max(0.0, msg.speed or 0.0):.2f}\"/>")
    detail.append("<__meshtastic/>")
    alt = msg.alt if msg.alt is not None and msg.alt != UNKNOWN else UNKNOWN
    return make_event(
        uid=uid, type=msg.cot_type, how="m-g", time=now_ms, start=now_ms, stale=now_ms + PLI_STALE_S * 1000,
        point=Point(lat=msg.lat, lon=msg.lon, hae=alt, ce=UNKNOWN, le=UNKNOWN),
        detail_xml="".join(detail).encode(), limits=_LIMITS,
    )


def chat_event(msg: TakMessage, *, sender_uid: str, message_id: str, now_ms: int) -> CotEvent:
    """The GeoChat of a mesh chat line: to All Chat Rooms, or to one user when the packet names one."""
    callsign = _clean(msg.callsign) or sender_uid
    room, dest_uid = ALL_CHAT_ROOMS, ALL_CHAT_ROOMS
    parent = "RootContactGroup"
    marti = ""
    if msg.to and msg.to != ALL_CHAT_ROOMS:
        dest_uid = _clean(msg.to)
        room = _clean(msg.to_callsign) or dest_uid
        marti = (
            f"<marti><dest callsign={quoteattr(_clean(msg.to_callsign))}/></marti>" if msg.to_callsign
            else f"<marti><dest uid={quoteattr(dest_uid)}/></marti>"
        )
    detail = (
        f"<__chat parent={quoteattr(parent)} groupOwner=\"false\" messageId={quoteattr(message_id)}"
        f" chatroom={quoteattr(room)} id={quoteattr(dest_uid)} senderCallsign={quoteattr(callsign)}>"
        f"<chatgrp uid0={quoteattr(sender_uid)} uid1={quoteattr(dest_uid)} id={quoteattr(dest_uid)}/></__chat>"
        f"<link uid={quoteattr(sender_uid)} type=\"a-f-G-U-C\" relation=\"p-p\"/>"
        f"<remarks source={quoteattr('BAO.F.ATAK.' + sender_uid)} to={quoteattr(dest_uid)}"
        f" time=\"{format_time(now_ms)}\">{escape(_clean(msg.message))}</remarks>{marti}<__meshtastic/>"
    )
    return make_event(
        uid=f"GeoChat.{sender_uid}.{room}.{message_id}", type="b-t-f", how="h-g-i-g-o", time=now_ms,
        start=now_ms, stale=now_ms + CHAT_STALE_S * 1000,
        point=Point(lat=0.0, lon=0.0, hae=UNKNOWN, ce=UNKNOWN, le=UNKNOWN), detail_xml=detail.encode(), limits=_LIMITS,
    )


def delivery_receipt(chat: CotEvent, *, now_ms: int) -> CotEvent:
    """``b-t-f-d`` for ``chat``: the mesh acknowledged it (shown to its sender as delivered)."""
    message_id = chat_message_id(chat) or chat.uid
    sender = chat.detail.link_uid or chat.uid
    detail = (
        f"<link uid={quoteattr(sender)} type=\"a-f-G-U-C\" relation=\"p-p\"/>"
        f"<__chatreceipt messageId={quoteattr(message_id)} chatroom={quoteattr(ALL_CHAT_ROOMS)}"
        f" senderCallsign=\"Meshtastic\"/><remarks source=\"Rallypoint\" to={quoteattr(sender)}/>"
    )
    return make_event(
        uid=message_id, type="b-t-f-d", how="h-g-i-g-o", time=now_ms, start=now_ms, stale=now_ms + 60_000,
        point=Point(lat=0.0, lon=0.0, hae=UNKNOWN, ce=UNKNOWN, le=UNKNOWN), detail_xml=detail.encode(),
        limits=_LIMITS,
    )


def chat_message_id(chat: CotEvent) -> str:
    """The ``__chat/@messageId`` ATAK puts in a GeoChat (receipts name it), or ""."""
    if not chat.detail.xml:
        return ""
    element = parse_fragment(chat.detail.xml, _LIMITS).find("__chat")
    return str(element.get("messageId", "")) if element is not None else ""


def from_mesh(event: CotEvent) -> bool:
    """Whether ``event`` came from a mesh (carries ``<__meshtastic/>``): never sent back into one."""
    return b"<__meshtastic" in event.detail.xml


def to_tak_message(event: CotEvent) -> TakMessage | None:
    """A TAK user's SA or GeoChat as a plugin message; None for what does not cross into the mesh."""
    d = event.detail
    if event.type == "b-t-f":
        detail = parse_fragment(d.xml, _LIMITS) if d.xml else None
        remarks = detail.find("remarks") if detail is not None else None
        text = (remarks.text or "") if remarks is not None else ""
        if not text:
            return None
        chat = d.chat
        to, to_callsign = ALL_CHAT_ROOMS, ""
        if chat is not None and chat.chatroom != ALL_CHAT_ROOMS and chat.chat_id:
            to, to_callsign = chat.chat_id, chat.chatroom
        sender_callsign = (chat.sender_callsign if chat is not None else None) or d.callsign or ""
        return TakMessage(
            kind=Kind.CHAT, uid=d.link_uid or event.uid, callsign=sender_callsign, message=text[:200],
            to=to, to_callsign=to_callsign,
        )
    if event.type.startswith("a-") and d.callsign:
        p = event.point
        return TakMessage(
            kind=Kind.PLI, uid=event.uid, callsign=d.callsign, team=d.group_name or "", role=d.group_role or "",
            battery=d.battery, lat=p.lat, lon=p.lon, alt=p.hae if p.hae != UNKNOWN else 0.0,
            speed=d.speed, course=d.course, cot_type=event.type,
        )
    return None
