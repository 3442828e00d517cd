"""Decides who receives an event, as TAK Server does (implicit group delivery, explicit ``marti/dest``)."""

from __future__ import annotations

import msgspec

from rallypoint.model.cot import CotEvent, Dest
from rallypoint.model.cot_type import ALL_CHAT_ROOMS, is_chat
from rallypoint.routing.directory import Directory, Subscriber, can_reach
from rallypoint.routing.envelope import Envelope

TEAM_CHAT_PARENT = "TeamGroups"
# ATAK's team colours. A ``TeamGroups`` chat to one of them goes to that team only; other room
# names under ``TeamGroups`` (named rooms of API callers) go to the sender's groups.
TEAMS = frozenset({
    "White", "Yellow", "Orange", "Magenta", "Red", "Maroon", "Purple",
    "Dark Blue", "Blue", "Cyan", "Teal", "Green", "Dark Green", "Brown",
})


class Audience(msgspec.Struct, frozen=True, gc=False):
    """Who an envelope goes to.

    Implicit delivery names ``groups`` (every reader of one of them, except ``exclude``) so that
    each node of a cluster can resolve its own local readers. Explicit delivery names subscriber
    ``ids`` already checked for group reachability. ``unresolved`` lists addresses that matched no
    reachable receiver (used for the chat delivery-failure notice).
    """

    groups: frozenset[str] = frozenset()
    ids: tuple[str, ...] = ()
    exclude: str | None = None
    explicit: bool = False
    unresolved: tuple[Dest, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.groups and not self.ids


NOBODY = Audience()


class Router:
    """Pure routing over a :class:`Directory`; knows nothing of sockets or storage."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def route(self, envelope: Envelope) -> Audience:
        """The audience of an envelope; the sender never receives its own event."""
        event = envelope.event
        sender = envelope.origin.session_id
        groups = envelope.origin.groups
        dests = event.detail.dests
        if dests:
            return self._explicit(dests, groups, sender)
        chat = event.detail.chat
        if chat is not None and is_chat(event.type) and chat.parent == TEAM_CHAT_PARENT and chat.chatroom in TEAMS:
            return self._team(chat.chatroom, groups, sender)
        if chat is not None and is_chat(event.type) and not _is_broadcast_chat(event):
            members = chat.members[1:] or (chat.chat_id,)
            return self._explicit(tuple(Dest(uid=m) for m in members), groups, sender)
        return Audience(groups=groups, exclude=sender)

    def _explicit(self, dests: tuple[Dest, ...], groups: frozenset[str], sender: str) -> Audience:
        ids: dict[str, None] = {}
        unresolved: list[Dest] = []
        for dest in dests:
            found = False
            for sub in self._resolve(dest):
                if sub.id != sender and can_reach(groups, sub.read_groups):
                    ids[sub.id] = None
                    found = True
            if not found and dest.mission is None:
                unresolved.append(dest)
        return Audience(ids=tuple(ids), exclude=sender, explicit=True, unresolved=tuple(unresolved))

    def _team(self, team: str, groups: frozenset[str], sender: str) -> Audience:
        """Readers of the sender's groups whose own SA puts them on ``team``.

        Relays (federation links) get it too: the server behind them applies the same rule.
        """
        directory = self._directory
        ids: dict[str, None] = {}
        for group in groups:
            for sub in directory.readers(group):
                if sub.id != sender and (directory.team_of(sub.id) == team or directory.is_relay(sub.id)):
                    ids[sub.id] = None
        return Audience(ids=tuple(ids), exclude=sender, explicit=True)

    def _resolve(self, dest: Dest) -> list[Subscriber]:
        found: list[Subscriber] = []
        if dest.callsign is not None:
            sub = self._directory.by_callsign(dest.callsign)
            if sub is not None:
                found.append(sub)
        if dest.uid is not None:
            sub = self._directory.by_uid(dest.uid)
            if sub is not None:
                found.append(sub)
        if dest.group is not None:
            found.extend(self._directory.readers(dest.group))
        return found


def _is_broadcast_chat(event: CotEvent) -> bool:
    chat = event.detail.chat
    if chat is None:
        return True
    return chat.chatroom == ALL_CHAT_ROOMS or chat.chat_id == ALL_CHAT_ROOMS or chat.parent == TEAM_CHAT_PARENT
