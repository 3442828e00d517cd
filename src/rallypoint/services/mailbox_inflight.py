"""Handing kept mail to a session, and counting it delivered once the session wrote it.

A stored message counts as delivered only once the session has handed its bytes to the transport
(:meth:`MailEnvelope.written`): TCP has no application acknowledgement, so the socket write is the
last point the server can observe. Until then the message is *in flight*; if the session goes away
first (it disconnected right after connecting, its outbox was cleared, an overflow dropped it), the
message goes back to the identity's mailbox and is offered again on the next connection.

The identity's cursor moves past everything written or dropped; a message written out of order is
marked delivered on its own. Expired mail is dropped and counted; so is mail the identity may no
longer read.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from rallypoint.clock import Clock
from rallypoint.errors import RallypointError
from rallypoint.model.cot import CotEvent
from rallypoint.model.cot_type import Priority
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.routing.directory import Subscriber, can_reach
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.services.mailbox_registry import RecipientRegistry
from rallypoint.services.mailbox_writer import MailboxWriter
from rallypoint.storage.base.mailbox import MailRecord

log = logging.getLogger(__name__)


class MailEnvelope(Envelope):
    """A stored message offered to one session; that session reports when its bytes were written."""

    __slots__ = ("_on_written", "identity", "seq", "session_id")

    def __init__(
        self,
        event: CotEvent,
        origin: Origin,
        received_ms: int,
        *,
        priority: Priority,
        identity: str,
        seq: int,
        session_id: str,
        on_written: Callable[[MailEnvelope], None],
    ) -> None:
        super().__init__(event, origin, received_ms, priority=priority)
        self.identity = identity
        self.seq = seq
        self.session_id = session_id
        self._on_written: Callable[[MailEnvelope], None] | None = on_written

    def written(self) -> None:
        """The session handed this message's bytes to its transport (reported once, later calls ignored)."""
        callback, self._on_written = self._on_written, None
        if callback is not None:
            callback(self)


class InFlight:
    """Messages offered to sessions and not yet written, by identity and by session."""

    def __init__(self) -> None:
        # identity -> seq -> (session id, message); seqs are added in increasing order per identity.
        self._by_identity: dict[str, dict[int, tuple[str, MailRecord]]] = {}
        # session id -> identities with messages in flight on that session.
        self._identities_of: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return sum(len(m) for m in self._by_identity.values())

    def add(self, identity: str, session_id: str, mail: MailRecord) -> None:
        """``mail`` was offered to ``session_id`` on behalf of ``identity``."""
        self._by_identity.setdefault(identity, {})[mail.seq] = (session_id, mail)
        self._identities_of.setdefault(session_id, set()).add(identity)

    def done(self, identity: str, seq: int) -> MailRecord | None:
        """Remove a written message; None when it is not (or no longer) in flight."""
        flying = self._by_identity.get(identity)
        if flying is None:
            return None
        entry = flying.pop(seq, None)
        if not flying:
            del self._by_identity[identity]
        return entry[1] if entry is not None else None

    def release_one(self, identity: str, seq: int, session_id: str) -> MailRecord | None:
        """Take back one message in flight on ``session_id``; None when it is not in flight there."""
        flying = self._by_identity.get(identity)
        if flying is None or flying.get(seq, ("", None))[0] != session_id:
            return None
        mail = flying.pop(seq)[1]
        if not flying:
            del self._by_identity[identity]
        return mail

    def lowest(self, identity: str) -> int | None:
        """The smallest seq of ``identity`` still in flight."""
        flying = self._by_identity.get(identity)
        return min(flying) if flying else None

    def release(self, session_id: str) -> dict[str, list[MailRecord]]:
        """Take back everything still in flight on a session that is gone, by identity, in seq order."""
        returned: dict[str, list[MailRecord]] = {}
        for identity in self._identities_of.pop(session_id, ()):
            flying = self._by_identity.get(identity)
            if flying is None:
                continue
            mine = sorted(seq for seq, (owner, _) in flying.items() if owner == session_id)
            if mine:
                returned[identity] = [flying.pop(seq)[1] for seq in mine]
            if not flying:
                del self._by_identity[identity]
        return returned


class Handover:
    """Takes an identity's mail out of its box for a session and settles its cursor as mail is done.

    Shares the :class:`~rallypoint.services.mailbox.Mailbox`'s boxes and cursors (the same dicts).
    """

    def __init__(
        self,
        boxes: dict[str, deque[MailRecord]],
        cursors: dict[str, int],
        *,
        writer: MailboxWriter,
        registry: RecipientRegistry,
        clock: Clock,
        limits: Limits,
        origin_id: str,
    ) -> None:
        self._boxes = boxes
        self._cursors = cursors
        self._writer = writer
        self._registry = registry
        self._clock = clock
        self._limits = limits
        self._origin_id = origin_id
        # Per identity, the highest seq taken from its box.
        self._high_taken: dict[str, int] = {}
        self._in_flight = InFlight()
        self.delivered = 0
        self.expired = 0
        self.unreachable = 0
        self.returned = 0

    @property
    def in_flight(self) -> int:
        """Messages offered to sessions and not yet written."""
        return len(self._in_flight)

    def forget(self, identity: str) -> None:
        """The registry forgot ``identity`` (its box and cursor are gone already)."""
        self._high_taken.pop(identity, None)

    def take(self, identity: str, sub: Subscriber) -> list[Envelope]:
        """The identity's pending mail for ``sub``, in seq order; expired and unreadable mail is dropped."""
        box = self._boxes.pop(identity, None)
        if not box:
            return []
        now = self._clock.now_ms()
        cursor = self._cursors.get(identity, 0)
        # A session that reports its socket writes gets envelopes that count as delivered only once
        # written; any other subscriber is trusted with the hand-over itself.
        confirms = getattr(sub, "confirms_writes", False) is True
        out: list[Envelope] = []
        done: list[int] = []
        for mail in box:
            if mail.seq <= cursor:
                continue
            self._high_taken[identity] = max(self._high_taken.get(identity, 0), mail.seq)
            if mail.expires_ms <= now:
                self.expired += 1
                done.append(mail.seq)
                continue
            if not can_reach(mail.groups, sub.read_groups):
                self.unreachable += 1
                done.append(mail.seq)
                continue
            try:
                event = parse_event(mail.xml, self._limits)
            except RallypointError:
                log.exception("stored message cannot be parsed", extra={"seq": mail.seq})
                done.append(mail.seq)
                continue
            origin = Origin(session_id=self._origin_id, groups=mail.groups)
            # Never coalesced nor thinned on the way out: each stored message must be written itself.
            priority = min(Priority(mail.priority), Priority.MESSAGE)
            if confirms:
                self._in_flight.add(identity, sub.id, mail)
                out.append(
                    MailEnvelope(
                        event,
                        origin,
                        mail.created_ms,
                        priority=priority,
                        identity=identity,
                        seq=mail.seq,
                        session_id=sub.id,
                        on_written=self._written,
                    )
                )
            else:
                out.append(Envelope(event, origin, mail.created_ms, priority=priority))
                done.append(mail.seq)
                self.delivered += 1
        for seq in done:
            self._settle(identity, seq)
        return out

    def give_back(
        self,
        session_id: str,
        connected: dict[str, dict[str, Subscriber]],
        hand_over: Callable[[Subscriber, list[Envelope]], object],
    ) -> None:
        """Mail still in flight on a session that left returns to its box; another session may take it.

        ``hand_over(session, envelopes)`` delivers what that other session takes (the mailbox
        publishes it to the session).
        """
        for identity, mails in self._in_flight.release(session_id).items():
            self._return(identity, mails, connected, hand_over)

    def give_back_one(
        self,
        identity: str,
        seq: int,
        session_id: str,
        connected: dict[str, dict[str, Subscriber]],
        hand_over: Callable[[Subscriber, list[Envelope]], object],
    ) -> None:
        """A session of another node did not write message ``seq``: it returns to the box."""
        mail = self._in_flight.release_one(identity, seq, session_id)
        if mail is not None:
            self._return(identity, [mail], connected, hand_over)

    def confirm(self, identity: str, seq: int) -> None:
        """A session of another node wrote message ``seq``: delivered, even if it was given back meanwhile.

        The report of the write and the session's departure travel apart, so the departure may
        have put the message back in its box already; the write is what counts.
        """
        if self._in_flight.done(identity, seq) is None:
            box = self._boxes.get(identity)
            if not box or all(m.seq != seq for m in box):
                return
            self._boxes[identity] = deque(m for m in box if m.seq != seq)
        self.delivered += 1
        self._settle(identity, seq)

    def confirm_seen(self, identity: str, key: tuple[str, int]) -> bool:
        """``identity`` got the message ``key`` (uid, time) live on another node: its kept copy is delivered.

        Mail in the box is matched by re-parsing it; this is rare (a certificate client that got the
        message live before its SA reached this node), so no index is kept for it.
        """
        for mail in tuple(self._boxes.get(identity, ())):
            try:
                event = parse_event(mail.xml, self._limits)
            except RallypointError:
                continue
            if (event.uid, event.time) == key:
                self.confirm(identity, mail.seq)
                return True
        return False

    def _return(
        self,
        identity: str,
        mails: list[MailRecord],
        connected: dict[str, dict[str, Subscriber]],
        hand_over: Callable[[Subscriber, list[Envelope]], object],
    ) -> None:
        box = self._boxes.get(identity)
        self._boxes[identity] = deque(sorted([*mails, *(box or ())], key=lambda m: m.seq))
        self.returned += len(mails)
        sessions = connected.get(identity)
        if sessions:
            other = next(iter(sessions.values()))
            hand_over(other, self.take(identity, other))

    def _written(self, envelope: MailEnvelope) -> None:
        """A session wrote a stored message to its socket: now it counts as delivered."""
        if self._in_flight.done(envelope.identity, envelope.seq) is None:
            return
        self.delivered += 1
        self._settle(envelope.identity, envelope.seq)

    def _settle(self, identity: str, seq: int) -> None:
        """``seq`` is done (written or dropped): move the cursor past everything done, durably.

        The cursor is the highest seq at or below which nothing of the identity is outstanding (in
        its box or in flight). A message written out of order, above an outstanding one, is marked
        delivered on its own so it is not offered again, even after a restart.
        """
        if self._registry.get(identity) is None:
            return  # forgotten meanwhile (registry bound): nothing of it is kept any more
        box = self._boxes.get(identity)
        lows = [s for s in (box[0].seq if box else None, self._in_flight.lowest(identity)) if s is not None]
        cursor = self._cursors.get(identity, 0)
        reach = min(lows) - 1 if lows else self._high_taken.get(identity, seq)
        if reach > cursor:
            self._cursors[identity] = cursor = reach
            self._writer.set_cursor(identity, reach)
        if seq > cursor:
            self._writer.mark_delivered(identity, seq)
