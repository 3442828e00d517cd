"""Delivery of mission notices to connected clients, never beyond the mission's groups.

Notices are bus publications for delivery only, addressed as the rest of the traffic is: to the
subscribers' uids (each node resolves them against its own sessions, within the mission's groups),
to the mission's groups, or to particular session ids. Without a bus (the mission rules tested
alone) they are resolved and delivered on this node.

Notices addressed to particular clients (changes and deletes to subscribers, role changes to that
subscriber, invitations to the invitee) are also handed to a :class:`NoticeKeeper` (the mailbox), which
keeps them for addressees that are offline and delivers them when they reconnect. Notices to a
mission's whole audience (created, keywords changed) are not kept: mission lists are fetched anew.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from rallypoint.clock import Clock
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.model.cot import CotEvent, Dest
from rallypoint.model.mission import Mission, MissionChange, MissionContent, Subscription
from rallypoint.routing.directory import Directory, Subscriber, can_reach
from rallypoint.routing.envelope import SERVER_ORIGIN_ID, Envelope, Origin
from rallypoint.routing.router import Audience, to_sessions
from rallypoint.services import missions_notify as notify

# Publishes a server-made envelope for delivery only (``Ingest.deliver``: the node's bus).
Publish = Callable[[Envelope, Audience], object]


class NoticeKeeper(Protocol):
    """Keeps a notice for addressees that are offline (see ``Mailbox.keep_notice``)."""

    def __call__(
        self, envelope: Envelope, *, reached: Iterable[str] = (), principals: Iterable[str] = (),
        uids: Iterable[str] = (), callsigns: Iterable[str] = (), groups: Iterable[str] = (),
    ) -> int: ...


class MissionPost:
    """Finds the sessions of subscribers and group readers, and offers them server-made notices."""

    def __init__(self, directory: Directory, clock: Clock) -> None:
        self._directory = directory
        self._clock = clock
        self._keeper: NoticeKeeper | None = None
        self._publish: Publish = Dispatcher(directory).deliver

    def deliver_through(self, publish: Publish) -> None:
        """Publish notices with ``publish`` (the node's bus) rather than deliver them on this node alone."""
        self._publish = publish

    def keep_offline(self, keeper: NoticeKeeper) -> None:
        """Hand addressed notices to ``keeper`` too, so offline addressees get them on reconnect."""
        self._keeper = keeper

    def changed(self, mission: Mission, subs: Iterable[Subscription], author: str,
                changes: list[MissionChange], contents: dict[str, MissionContent]) -> None:
        """``t-x-m-c`` listing ``changes`` to every connected subscriber."""
        event = notify.mission_notice(notify.CHANGED, "CHANGE", mission, author_uid=author,
                                      now_ms=self._clock.now_ms(), changes=changes, contents=contents)
        self.to_subscribers(subs, mission, event)

    def to_subscribers(self, subs: Iterable[Subscription], mission: Mission, event: CotEvent) -> None:
        """``event`` to the connected sessions of ``subs``, kept for those offline."""
        subs = list(subs)
        envelope = self._envelope(mission, event)
        # Reached here, for the keeper; every node resolves the uids for its own sessions.
        reached = [s.id for s in self.sessions_of(subs) if can_reach(mission.groups, s.read_groups)]
        if subs:
            uids = tuple(dict.fromkeys(Dest(uid=s.client_uid) for s in subs))
            self._publish(envelope, Audience(dests=uids, explicit=True, delivery_only=True))
        if self._keeper is not None and subs:
            # A subscriber is its principal when it has one (any of its devices may reconnect), else its uid.
            self._keeper(
                envelope, reached=reached,
                principals=[s.principal for s in subs if s.principal],
                uids=[s.client_uid for s in subs if not s.principal],
            )

    def to_addressees(self, receivers: Iterable[Subscriber], mission: Mission, event: CotEvent, *,
                      uids: Iterable[str] = (), callsigns: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
        """``event`` to connected ``receivers``, kept for the named addressees that are offline."""
        reached = self.offer(receivers, mission, event)
        if self._keeper is not None:
            self._keeper(self._envelope(mission, event), reached=reached, uids=uids, callsigns=callsigns,
                         groups=groups)

    def sessions_of(self, subs: Iterable[Subscription]) -> list[Subscriber]:
        """The connected sessions of these subscriptions (once each)."""
        found: dict[str, Subscriber] = {}
        for sub in subs:
            session = self._directory.by_uid(sub.client_uid)
            if session is not None:
                found[session.id] = session
        return list(found.values())

    def to_readers(self, mission: Mission, event: CotEvent) -> None:
        """``event`` to every session, on every node, reading one of the mission's groups."""
        self._publish(self._envelope(mission, event), Audience(groups=mission.groups, delivery_only=True))

    def group_readers(self, mission: Mission) -> list[Subscriber]:
        """Every connected session reading one of the mission's groups."""
        found: dict[str, Subscriber] = {}
        for group in mission.groups:
            for session in self._directory.readers(group):
                found[session.id] = session
        return list(found.values())

    def offer(self, receivers: Iterable[Subscriber], mission: Mission, event: CotEvent) -> list[str]:
        """Publish ``event`` to each receiver that can still see the mission; the ids of those reached."""
        # Never tell a client about a mission it cannot see (its groups may have changed).
        reached = [r.id for r in receivers if can_reach(mission.groups, r.read_groups)]
        if reached:
            self._publish(self._envelope(mission, event), to_sessions(*reached))
        return reached

    def _envelope(self, mission: Mission, event: CotEvent) -> Envelope:
        return Envelope(event, Origin(session_id=SERVER_ORIGIN_ID, groups=mission.groups), self._clock.now_ms())
