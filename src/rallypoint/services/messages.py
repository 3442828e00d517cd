"""Events the server itself originates: disconnect deletes, chat delivery failures, group changes."""

from __future__ import annotations

import uuid
from xml.sax.saxutils import quoteattr

from rallypoint.model.cot import CotEvent, Point
from rallypoint.model.cot_type import CHAT_DELIVERY_FAILURE, DELETE, GROUPS_CHANGED
from rallypoint.protocol.xml_codec import make_event

SERVER_HOW = "h-g-i-g-o"
_ORIGIN = Point(0.0, 0.0, 0.0, 9999999.0, 9999999.0)


def disconnect_delete(departed_uid: str, departed_type: str, now_ms: int) -> CotEvent:
    """``t-x-d-d`` telling receivers a client left (they grey it out; no ``__forcedelete``)."""
    detail = f"<link uid={quoteattr(departed_uid)} type={quoteattr(departed_type)} relation=\"p-p\"/>"
    return make_event(
        uid=str(uuid.uuid4()),
        type=DELETE,
        how=SERVER_HOW,
        time=now_ms,
        start=now_ms,
        stale=now_ms + 20_000,
        point=_ORIGIN,
        detail_xml=detail.encode(),
    )


def chat_delivery_failure(chat: CotEvent, unreached: str, now_ms: int) -> CotEvent:
    """``b-t-f-s`` back to the sender of an addressed chat that reached nobody."""
    sender = chat.detail.link_uid or chat.uid
    detail = (
        f"<link uid={quoteattr(chat.uid)} type={quoteattr(chat.type)} relation=\"p-p\"/>"
        f"<remarks source=\"Rallypoint\" to={quoteattr(sender)}>"
        f"Message not delivered: {_escape(unreached)} is not reachable</remarks>"
    )
    return make_event(
        uid=f"{chat.uid}.failed",
        type=CHAT_DELIVERY_FAILURE,
        how=SERVER_HOW,
        time=now_ms,
        start=now_ms,
        stale=now_ms + 60_000,
        point=_ORIGIN,
        detail_xml=detail.encode(),
    )


def groups_changed(now_ms: int) -> CotEvent:
    """``t-x-g-c``: tells a client its group membership changed so it refreshes its channels."""
    return make_event(
        uid=str(uuid.uuid4()),
        type=GROUPS_CHANGED,
        how=SERVER_HOW,
        time=now_ms,
        start=now_ms,
        stale=now_ms + 20_000,
        point=_ORIGIN,
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
