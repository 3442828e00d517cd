"""Delivery of mission notices to connected clients, never beyond the mission's groups."""

from __future__ import annotations

from collections.abc import Iterable

from rallypoint.clock import Clock
from rallypoint.model.cot import CotEvent
from rallypoint.model.mission import Mission, MissionChange, MissionContent, Subscription
from rallypoint.routing.directory import Directory, Subscriber, can_reach
from rallypoint.routing.envelope import SERVER_ORIGIN_ID, Envelope, Origin
from rallypoint.services import missions_notify as notify


class MissionPost:
    """Finds the sessions of subscribers and group readers, and offers them server-made notices."""

    def __init__(self, directory: Directory, clock: Clock) -> None:
        self._directory = directory
        self._clock = clock

    def changed(self, mission: Mission, subs: Iterable[Subscription], author: str,
                changes: list[MissionChange], contents: dict[str, MissionContent]) -> None:
        """``t-x-m-c`` listing ``changes`` to every connected subscriber."""
        event = notify.mission_notice(notify.CHANGED, "CHANGE", mission, author_uid=author,
                                      now_ms=self._clock.now_ms(), changes=changes, contents=contents)
        self.offer(self.sessions_of(subs), mission, event)

    def sessions_of(self, subs: Iterable[Subscription]) -> list[Subscriber]:
        """The connected sessions of these subscriptions (once each)."""
        found: dict[str, Subscriber] = {}
        for sub in subs:
            session = self._directory.by_uid(sub.client_uid)
            if session is not None:
                found[session.id] = session
        return list(found.values())

    def group_readers(self, mission: Mission) -> list[Subscriber]:
        """Every connected session reading one of the mission's groups."""
        found: dict[str, Subscriber] = {}
        for group in mission.groups:
            for session in self._directory.readers(group):
                found[session.id] = session
        return list(found.values())

    def offer(self, receivers: Iterable[Subscriber], mission: Mission, event: CotEvent) -> None:
        """Hand ``event`` to each receiver that can still see the mission."""
        envelope = Envelope(event, Origin(session_id=SERVER_ORIGIN_ID, groups=mission.groups), self._clock.now_ms())
        for receiver in receivers:
            # Never tell a client about a mission it cannot see (its groups may have changed).
            if can_reach(mission.groups, receiver.read_groups):
                receiver.offer(envelope)
