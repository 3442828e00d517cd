"""Session lifecycle shared by every transport: join the directory, get the picture, leave cleanly."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from rallypoint.clock import Clock
from rallypoint.routing.directory import Directory, Subscriber, can_reach
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.security.policy import IdentityPolicy
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.ingest import Ingest
from rallypoint.services.messages import disconnect_delete
from rallypoint.services.presence import Presence

log = logging.getLogger(__name__)


class SessionHub:
    """What happens when a receiver connects and disconnects, whatever its transport."""

    def __init__(
        self,
        *,
        directory: Directory,
        presence: Presence,
        emergencies: EmergencyService,
        ingest: Ingest,
        clock: Clock,
        identity: IdentityPolicy | None = None,
    ) -> None:
        self._identity = identity
        self._directory = directory
        self._presence = presence
        self._emergencies = emergencies
        self._ingest = ingest
        self._clock = clock
        self._join_sources: list[Callable[[Subscriber], Iterable[Envelope]]] = []
        self._leave_listeners: list[Callable[[Subscriber], object]] = []

    def add_join_source(self, source: Callable[[Subscriber], Iterable[Envelope]]) -> None:
        """Let ``source(sub)`` add to what a new subscriber receives, after emergencies, before the picture."""
        self._join_sources.append(source)

    def add_leave_listener(self, listener: Callable[[Subscriber], object]) -> None:
        """Call ``listener(sub)`` when a subscriber leaves (after it is removed from the directory)."""
        self._leave_listeners.append(listener)

    def joined(self, sub: Subscriber) -> Iterator[Envelope]:
        """Register a subscriber; yields the picture it must receive first."""
        self._directory.add(sub)
        if self._identity is not None:
            self._identity.track_session(sub.id)
        now = self._clock.now_ms()
        yield from self._emergencies.visible_to(sub, now)
        for source in self._join_sources:
            yield from source(sub)
        yield from self._presence.snapshot_for(sub, now)

    def regrouped(self, sub: Subscriber, old_read_groups: frozenset[str]) -> None:
        """Re-index a live subscriber whose groups changed and send it what it may now see."""
        self._directory.regroup(sub, old_read_groups)
        now = self._clock.now_ms()
        # Stays local: the picture every node keeps alike, read for a session of this node. Its
        # envelopes keep their origins (other sessions, other nodes), which the bus would refuse
        # to publish again; a publication would also send the whole snapshot to every node.
        for envelope in self._presence.snapshot_for(sub, now):
            if not can_reach(envelope.origin.groups, old_read_groups):
                sub.offer(envelope)

    def left(self, sub: Subscriber) -> None:
        """Unregister a subscriber and tell its audience it left (``t-x-d-d``)."""
        departed = self._presence.forget_session(sub.id)
        if self._identity is not None:
            self._identity.forget_session(sub.id)
        self._directory.remove(sub.id)
        for listener in self._leave_listeners:
            listener(sub)
        if departed is None:
            return
        now = self._clock.now_ms()
        notice = disconnect_delete(departed.event.uid, departed.event.type, now)
        origin = Origin(
            session_id=sub.id, groups=departed.origin.groups, principal=departed.origin.principal,
            node=departed.origin.node,
        )
        self._ingest.accept(Envelope(notice, origin, now))
