"""Envelopes of other nodes, from NATS bytes to this node's handlers.

Each message is decoded (refused, counted and logged when oversized or malformed), dropped when it
is this node's own or was seen before (a JetStream redelivery, or the same envelope on both the
core and the JetStream path), and handed to every handler; a handler that fails is counted and
logged, and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from rallypoint.bus.base import DeliveryHandler
from rallypoint.bus.codec import BusCodec
from rallypoint.errors import LimitExceeded, RemoteProtocolError

log = logging.getLogger(__name__)


class Incoming:
    """Decodes, deduplicates (by message id, the last ``remembered`` ids) and delivers remote envelopes."""

    def __init__(
        self,
        codec: BusCodec,
        node: str,
        handlers: Sequence[DeliveryHandler],
        *,
        count: Callable[[str], None],
        remembered: int,
    ) -> None:
        self._codec = codec
        self._node = node
        self._handlers = handlers
        self._count = count
        self._remembered = remembered
        self._seen: dict[str, None] = {}
        # received: handed to the handlers; own_ignored: this node's own messages coming back;
        # duplicates: messages seen before.
        self.received = self.own_ignored = self.duplicates = 0

    def deliver(self, data: bytes) -> None:
        """Hand one NATS message's envelope to the handlers, unless it is refused, ours or a repeat."""
        try:
            message = self._codec.decode(data)
        except LimitExceeded as exc:
            self._count("oversize")
            log.warning("bus message refused", extra={"reason": exc.reason, "detail": exc.detail})
            return
        except RemoteProtocolError as exc:
            self._count("malformed")
            log.warning("bus message refused", extra={"reason": exc.reason, "detail": exc.detail})
            return
        if message.origin.node == self._node:
            self.own_ignored += 1
            return
        if message.id in self._seen:
            self.duplicates += 1
            return
        self._seen[message.id] = None
        if len(self._seen) > self._remembered:
            del self._seen[next(iter(self._seen))]
        envelope = message.envelope()
        self.received += 1
        for handler in self._handlers:
            try:
                handler(envelope, message.audience)
            except Exception:
                # The consumer must go on for the other handlers and messages; the bug is logged.
                self._count("handler_error")
                log.exception("bus handler failed", extra={"uid": envelope.event.uid, "id": message.id})
