"""Kept mail handed to a session but not yet written to its socket.

A stored message counts as delivered only once the session has handed its bytes to the transport
(:meth:`MailEnvelope.written`): TCP has no application acknowledgement, so the socket write is the
last point the server can observe. Until then the message is *in flight*; if the session goes away
first (it disconnected right after connecting, its outbox was cleared, an overflow dropped it), the
message goes back to the identity's mailbox and is offered again on the next connection.
"""

from __future__ import annotations

from collections.abc import Callable

from rallypoint.model.cot import CotEvent
from rallypoint.model.cot_type import Priority
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.storage.sqlite.mailbox import MailRecord


class MailEnvelope(Envelope):
    """A stored message offered to one session; that session reports when its bytes were written."""

    __slots__ = ("_on_written", "identity", "seq", "session_id")

    def __init__(
        self, event: CotEvent, origin: Origin, received_ms: int, *, priority: Priority, identity: str, seq: int,
        session_id: str, on_written: Callable[[MailEnvelope], None],
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
