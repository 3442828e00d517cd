"""GeoChat on the live feed: which chats a feed shows, the web user's chat identity, the ``Chat`` message.

A web user chats as ``rallypoint-api-<user>`` (the sender uid of ``POST /api/chat``) with their user
name as callsign. An open feed is bound to that uid (and to the callsign, unless a TAK client holds
it) in the directory, so a TAK client's direct chat to the web user is routed to the feed by the
router's own rules, exactly as to a TAK client; group chats reach it as a reader of the sender's groups.
"""

from __future__ import annotations

import msgspec

from rallypoint.model.cot import CotEvent
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import TEAM_CHAT_PARENT, TEAMS
from rallypoint.services.tasks_cot import chat_text
from rallypoint.web.api.messaging import sender_uid


class ChatMessage(msgspec.Struct, frozen=True, tag_field="type", tag="Chat"):
    """One GeoChat message a feed's caller may read.

    ``direct`` is true when it was addressed to the caller (their uid or callsign); ``own`` when the
    caller sent it (from this page or another); ``team`` names the team of a team chat (``TeamGroups``
    parent, a team colour as chat room).
    """

    uid: str
    time_ms: int
    sender_uid: str | None
    sender_callsign: str | None
    chatroom: str
    chat_id: str
    text: str
    direct: bool
    own: bool
    team: str | None


def chat_identity(principal: str) -> tuple[str, str]:
    """The uid and callsign a web user chats as."""
    return sender_uid(principal), principal


def addressed_to(event: CotEvent, uid: str, callsign: str) -> bool:
    """Whether a chat names this uid or callsign as a recipient (``marti/dest`` or a chat member)."""
    chat = event.detail.chat
    if any(d.uid == uid or d.callsign == callsign for d in event.detail.dests):
        return True
    return chat is not None and (uid in chat.members[1:] or chat.chat_id == uid)


def sent_by(envelope: Envelope, principal: str | None) -> bool:
    """Whether ``principal`` sent this chat through the API (its origin, never what the event claims)."""
    return principal is not None and envelope.origin.session_id == f"api:{principal}"


def chat_message(event: CotEvent, *, direct: bool, own: bool = False) -> bytes:
    """The ``Chat`` live message of a GeoChat event."""
    chat = event.detail.chat
    room = chat.chatroom if chat is not None else ""
    team = room if chat is not None and chat.parent == TEAM_CHAT_PARENT and room in TEAMS else None
    sender = chat.members[0] if chat is not None and chat.members else event.detail.link_uid
    return msgspec.json.encode(ChatMessage(
        uid=event.uid, time_ms=event.time, sender_uid=sender,
        sender_callsign=chat.sender_callsign if chat is not None else None, chatroom=room,
        chat_id=chat.chat_id if chat is not None else "", text=chat_text(event), direct=direct,
        own=own, team=team,
    ))
