"""Decides who receives an event, as TAK Server does (implicit group delivery, explicit ``marti/dest``).

The router names addresses, never sessions of this node: the audience crosses the bus and every
node resolves it against its own sessions (``delivery.dispatcher``). Whether an address reaches
anyone at all is asked of the cluster-wide :class:`~rallypoint.routing.contacts.ContactIndex`, so
a recipient connected to another node is not reported unreachable.
"""

from __future__ import annotations

import msgspec

from rallypoint.model.cot import CotEvent, Dest
from rallypoint.model.cot_type import ALL_CHAT_ROOMS, is_chat
from rallypoint.model.exercise import EXERCISE_TYPE
from rallypoint.routing.contacts import ContactIndex
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope

TEAM_CHAT_PARENT = "TeamGroups"
# ATAK's team colours. A ``TeamGroups`` chat to one of them goes to that team only; other room
# names under ``TeamGroups`` (named rooms of API callers) go to the sender's groups.
TEAMS = frozenset({
    "White", "Yellow", "Orange", "Magenta", "Red", "Maroon", "Purple",
    "Dark Blue", "Blue", "Cyan", "Teal", "Green", "Dark Green", "Brown",
})


class Audience(msgspec.Struct, frozen=True, gc=False):
    """Who an envelope goes to, as addresses every node resolves against its own sessions.

    * ``groups``: implicit delivery, every reader of one of them (except ``exclude``);
    * ``dests``: explicit ``marti/dest`` (or chat member) addresses by uid, callsign, group or
      mission; a receiver gets it when the sender's groups reach its read groups;
    * ``team``: team chat, readers of the sender's groups whose own SA puts them on this team,
      and relays (federation links);
    * ``sessions``: cluster-unique session ids, for what is meant for one session (replies,
      notices, kept mail, a picture snapshot); not checked against groups: the producer did;
    * ``exclude``: the sender's session, which never receives its own event;
    * ``explicit``: addressed traffic (dests or team), as opposed to a group broadcast;
    * ``unresolved``: addresses no reachable contact in the cluster answered to, decided once
      at the origin (the chat delivery-failure notice and store-and-forward use it); a team
      nobody is on is listed as ``Dest(group=<team>)``;
    * ``delivery_only``: a publication made for delivery alone (a reply, kept mail, a snapshot):
      the features that keep state skip it, as it is not a new event of the picture.
    """

    groups: frozenset[str] = frozenset()
    dests: tuple[Dest, ...] = ()
    team: str | None = None
    sessions: tuple[str, ...] = ()
    exclude: str | None = None
    explicit: bool = False
    unresolved: tuple[Dest, ...] = ()
    delivery_only: bool = False

    @property
    def is_empty(self) -> bool:
        return not self.groups and not self.dests and self.team is None and not self.sessions

    @property
    def reaches_nobody(self) -> bool:
        """Addressed, and none of its addresses reaches anyone in the cluster (missions aside)."""
        if not self.explicit:
            return False
        if self.team is not None:
            return bool(self.unresolved)
        addressable = sum(1 for dest in self.dests if dest.mission is None)
        return len(self.unresolved) >= addressable


NOBODY = Audience()


def to_sessions(*session_ids: str) -> Audience:
    """The audience of a publication meant for these sessions only (replies, notices, kept mail)."""
    return Audience(sessions=session_ids, delivery_only=True)


class Router:
    """Pure routing: addresses from the event, reachability from the cluster's contacts."""

    def __init__(self, directory: Directory, contacts: ContactIndex | None = None) -> None:
        # Without a contact index (a node alone, unit tests), this node's directory is the cluster.
        self._contacts = contacts if contacts is not None else ContactIndex(directory)

    @property
    def contacts(self) -> ContactIndex:
        return self._contacts

    def route(self, envelope: Envelope) -> Audience:
        """The audience of an envelope; the sender never receives its own event."""
        event = envelope.event
        if event.type == EXERCISE_TYPE:
            # An exercise runner's inject marker: kept in history for the after-action report, shown to nobody.
            return NOBODY
        sender = envelope.origin.session_id
        groups = envelope.origin.groups
        dests = event.detail.dests
        if dests:
            return self._explicit(dests, groups, sender)
        chat = event.detail.chat
        if chat is not None and is_chat(event.type) and chat.parent == TEAM_CHAT_PARENT and chat.chatroom in TEAMS:
            team = chat.chatroom
            reached = self._contacts.team_reachable(team, groups, sender)
            return Audience(
                team=team, exclude=sender, explicit=True, unresolved=() if reached else (Dest(group=team),)
            )
        if chat is not None and is_chat(event.type) and not _is_broadcast_chat(event):
            members = chat.members[1:] or (chat.chat_id,)
            return self._explicit(tuple(Dest(uid=m) for m in members), groups, sender)
        return Audience(groups=groups, exclude=sender)

    def _explicit(self, dests: tuple[Dest, ...], groups: frozenset[str], sender: str) -> Audience:
        contacts = self._contacts
        unresolved = tuple(
            dest for dest in dests if dest.mission is None and not contacts.reachable(dest, groups, sender)
        )
        return Audience(dests=dests, exclude=sender, explicit=True, unresolved=unresolved)


def _is_broadcast_chat(event: CotEvent) -> bool:
    chat = event.detail.chat
    if chat is None:
        return True
    return chat.chatroom == ALL_CHAT_ROOMS or chat.chat_id == ALL_CHAT_ROOMS or chat.parent == TEAM_CHAT_PARENT
