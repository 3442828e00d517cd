"""The NATS bus's outgoing side: two bounded queues, and the tasks that encode and send them.

Overflow policy, per queue:

- positions and bulk (core NATS): bounded, the oldest is dropped first and counted as
  ``position_overflow``; while NATS is unreachable they are dropped and counted as
  ``disconnected`` (they would be stale when it comes back, and the next report replaces them);
- JetStream classes: bounded, held while NATS is unreachable and sent in order once it is back;
  when full the oldest is dropped, counted as ``jetstream_overflow`` and logged (once when the
  overflow begins, once when it ends with the count): the newest emergency, cancel or chat is
  the one that matters most.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from rallypoint.bus.codec import BusCodec
from rallypoint.bus.subjects import Subjects, Transport, transport_of
from rallypoint.errors import LimitExceeded
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"
Count = Callable[[str], None]


class Outgoing:
    """Queues a node's publications for NATS; ``run_core`` and ``run_jetstream`` send them."""

    def __init__(
        self, subjects: Subjects, codec: BusCodec, node: str, *, connected: asyncio.Event, count: Count,
        transient: tuple[type[BaseException], ...], max_positions: int, max_jetstream: int, window: int,
        ack_timeout_s: float,
    ) -> None:
        self._subjects = subjects
        self._codec = codec
        self._node = node
        self._connected = connected
        self._count = count
        self._transient = transient
        self._core: deque[tuple[Envelope, Audience]] = deque(maxlen=max_positions)
        self._jetstream: deque[tuple[Envelope, Audience]] = deque()
        self._max_jetstream = max_jetstream
        self._window = window
        self._ack_timeout_s = ack_timeout_s
        self._core_ready = asyncio.Event()
        self._jetstream_ready = asyncio.Event()
        # Set while nothing waits to be sent: what a closing bus waits for.
        self._core_idle = asyncio.Event()
        self._jetstream_idle = asyncio.Event()
        self._core_idle.set()
        self._jetstream_idle.set()
        # Random start: ids stay unique across restarts of the node within JetStream's dedup window.
        self._seq = secrets.randbits(60)
        self._in_flight = 0
        self._overflowing = 0
        self.sent = 0

    @property
    def pending(self) -> int:
        """Envelopes queued or sent and not yet acknowledged."""
        return len(self._core) + len(self._jetstream) + self._in_flight

    def offer(self, envelope: Envelope, audience: Audience) -> None:
        """Queue an envelope for NATS; never waits (see the module's overflow policy)."""
        if transport_of(envelope.priority) is Transport.CORE:
            if len(self._core) == self._core.maxlen:
                self._count("position_overflow")
            self._core.append((envelope, audience))
            self._core_idle.clear()
            self._core_ready.set()
            return
        if len(self._jetstream) >= self._max_jetstream:
            dropped, _ = self._jetstream.popleft()
            self._count("jetstream_overflow")
            if not self._overflowing:
                log.warning("bus queue full: dropping the oldest unsent messages",
                            extra={"uid": dropped.event.uid, "type": dropped.event.type, "limit": self._max_jetstream})
            self._overflowing += 1
        self._jetstream.append((envelope, audience))
        self._jetstream_idle.clear()
        self._jetstream_ready.set()

    async def drained(self) -> None:
        """Return once everything queued has been sent (and acknowledged, for JetStream)."""
        await self._core_idle.wait()
        await self._jetstream_idle.wait()

    def discard(self) -> int:
        """Forget what is still queued (the bus is closing); returns how many."""
        unsent = len(self._core) + len(self._jetstream)
        self._core.clear()
        self._jetstream.clear()
        return unsent

    def _encode(self, envelope: Envelope, audience: Audience) -> tuple[str, bytes] | None:
        self._seq += 1
        message_id = f"{self._node}:{self._seq}"
        try:
            return message_id, self._codec.encode(message_id, envelope, audience)
        except LimitExceeded as exc:
            self._count("oversize")
            log.warning("bus message dropped", extra={
                "reason": "oversize", "uid": envelope.event.uid, "type": envelope.event.type, "detail": str(exc)})
            return None

    async def run_core(self, nc: Client) -> None:
        """Send positions and bulk as they come: at most once."""
        while True:
            await self._core_ready.wait()
            self._core_ready.clear()
            sent = 0
            while self._core:
                envelope, audience = self._core.popleft()
                if not self._connected.is_set():
                    self._count("disconnected")
                    continue
                encoded = self._encode(envelope, audience)
                if encoded is None:
                    continue
                try:
                    await nc.publish(self._subjects.subject_for(envelope.priority), encoded[1])
                except self._transient as exc:
                    self._count("disconnected")
                    log.debug("bus position not sent", extra={"uid": envelope.event.uid, "error": repr(exc)})
                    continue
                self.sent += 1
                sent += 1
                if sent % 256 == 0:
                    await asyncio.sleep(0)  # let the rest of the node run during a burst
            if not self._core:
                self._core_idle.set()

    async def run_jetstream(self, js: JetStreamContext) -> None:
        """Send the acknowledged classes in windows, each window in order."""
        while True:
            await self._jetstream_ready.wait()
            batch: list[tuple[str, str, bytes]] = []
            while self._jetstream and len(batch) < self._window:
                envelope, audience = self._jetstream.popleft()
                encoded = self._encode(envelope, audience)
                if encoded is not None:
                    batch.append((encoded[0], self._subjects.subject_for(envelope.priority), encoded[1]))
            if not self._jetstream:
                self._jetstream_ready.clear()
                if self._overflowing:
                    log.warning("bus queue no longer full", extra={"dropped": self._overflowing})
                    self._overflowing = 0
            self._in_flight = len(batch)
            await self._publish_in_order(js, batch)
            self._in_flight = 0
            if not self._jetstream:
                self._jetstream_idle.set()

    async def _publish_in_order(self, js: JetStreamContext, batch: list[tuple[str, str, bytes]]) -> None:
        """Publish ``batch`` pipelined and acknowledged, in order, retrying from the first unacknowledged.

        One connection delivers in order, so when a message is lost every later one is too and
        sending again from the first loss keeps the order; the message id makes JetStream drop
        the copies of those that had arrived after all.
        """
        failures = 0
        while batch:
            await self._connected.wait()
            futures: list[asyncio.Future[Any]] = []
            try:
                for message_id, subject, data in batch:
                    futures.append(await js.publish_async(subject, data, headers={MSG_ID: message_id}))
            except self._transient as exc:
                log.debug("bus publish interrupted", extra={"error": repr(exc)})
            acked = 0
            for future in futures:
                try:
                    await asyncio.wait_for(future, self._ack_timeout_s)
                except self._transient as exc:
                    log.debug("bus publish not acknowledged", extra={"error": repr(exc)})
                    break
                acked += 1
            for future in futures[acked:]:
                future.cancel()
            self.sent += acked
            self._in_flight -= acked
            batch = batch[acked:]
            failures = 0 if acked else failures + 1
            if batch and failures:
                # JetStream may answer "unavailable" for a moment after a server restart.
                await asyncio.sleep(min(0.05 * 2 ** min(failures, 6), 2.0))
