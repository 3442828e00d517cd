"""The writing side of one stream session: direct writes, the outbox, owed protocol replies, the budget.

Deliveries are written straight to the socket while it keeps up (no task switch, no copy: the same
encoded bytes go to every receiver, batched per loop iteration by the write coalescer). When the
kernel buffer fills, asyncio pauses us and envelopes wait in the bounded, coalescing outbox until it
drains. A link budget (``session_pacing``) may defer or thin traffic; protocol replies (pong, offer,
upgrade answer) are paid for in stream order; a watchdog (``session_watchdog``) tells when the
receiver has fallen too far behind.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from rallypoint.clock import Clock
from rallypoint.delivery.budget import Decision, ThinningPolicy
from rallypoint.delivery.outbox import Outbox
from rallypoint.model.cot_type import COALESCED_CLASSES, Priority, delivery_priority
from rallypoint.protocol.connection import CotConnection
from rallypoint.protocol.wire import WireFormat
from rallypoint.routing.envelope import ANON_GROUP, Envelope
from rallypoint.services.mailbox_inflight import MailEnvelope
from rallypoint.transport.coalescer import WriteCoalescer
from rallypoint.transport.session_pacing import Pacing
from rallypoint.transport.session_watchdog import SlowReceiverWatch

# Bytes of queued frames written (and compressed) together when an outbox drains.
_DRAIN_BATCH_BYTES = 32 * 1024
# Enum members read once: ``Decision.SEND`` is a metaclass attribute lookup (about 0.15 us on Python
# 3.11), paid per receiver per event in ``offer``.
_SEND = Decision.SEND
_XML = WireFormat.XML
_SKIP = Decision.SKIP


class SessionOutput:
    """Everything one session writes, in stream order; owned by that session."""

    __slots__ = (
        "_clock", "_closed", "_coalescer", "_conn", "_max_items", "_outbox", "_owed", "_paused", "_pending",
        "_pending_charge", "_pending_mail", "_plain", "_too_slow", "_transport", "_write_chunk", "pacing", "watch",
        "write_groups",
    )

    def __init__(
        self,
        conn: CotConnection,
        clock: Clock,
        coalescer: WriteCoalescer,
        *,
        max_items: int,
        slow_timeout_s: float,
        too_slow: Callable[[], object] | None = None,
    ) -> None:
        self._conn = conn
        self._clock = clock
        self._coalescer = coalescer
        self._max_items = max_items
        # Called once the receiver is too slow to keep (the session disconnects it).
        self._too_slow = too_slow
        self._transport: asyncio.WriteTransport | None = None
        self._write_chunk = 0
        self._closed = False
        # The receiver's own (write) groups: senders reporting to them are its team (delivery class).
        self.write_groups: frozenset[str] = frozenset({ANON_GROUP})
        # Created on first back-pressure: most sessions keep up and never need one (memory per idle client).
        self._outbox: Outbox | None = None
        # Set once the client's identity and groups are known (budgets can depend on its class).
        self.pacing: Pacing | None = None
        # Protocol replies waiting for the budget, in write order and already in their final wire
        # form: nothing else is written until they are.
        self._owed: deque[bytes] = deque()
        self._paused = False
        self._pending: list[bytes] = []
        # Budget taken for ``_pending``: on a compressed stream, each frame's worst case, of which
        # what compression saved is given back once the batch is written.
        self._pending_charge = 0
        # Stored mail among ``_pending``: confirmed to the mailbox once its bytes reach the transport.
        self._pending_mail: list[MailEnvelope] = []
        self.watch = SlowReceiverWatch(clock, slow_timeout_s)
        # Open and unpaced: while the socket keeps up, ``offer`` only appends the envelope's bytes
        # (what its general path decides then, without asking again). Cleared by a budget or close.
        self._plain = True

    # --- lifecycle ---------------------------------------------------------------------------
    def attach(self, transport: asyncio.WriteTransport, *, write_chunk: int = 0) -> None:
        """Write to ``transport`` from now on, at most ``write_chunk`` bytes per write (0: unbounded)."""
        self._transport = transport
        self._write_chunk = write_chunk

    def set_budget(self, policy: ThinningPolicy) -> None:
        """Pace this session's output with ``policy`` (a byte budget)."""
        self.pacing = Pacing(policy, self._clock, max_items=self._max_items, on_due=self._retry_drain)
        self._plain = False

    def close(self) -> None:
        """Stop writing and forget what waits (stored mail forgotten here is not confirmed, so kept)."""
        self._closed = True
        self._plain = False
        self._transport = None
        if self.pacing is not None:
            self.pacing.stop()
        if self._outbox is not None:
            self._outbox.clear()
        self._owed.clear()
        self._pending.clear()
        self._pending_mail.clear()

    def pause(self) -> None:
        """The socket buffer is full: what is pending goes with the next flush, later deliveries queue."""
        self._paused = True
        self.watch.paused()

    def resume(self) -> None:
        self._paused = False
        self.watch.resumed()
        self.drain()

    # --- the per-event path ------------------------------------------------------------------
    def offer(self, envelope: Envelope) -> None:
        """Send now if the socket keeps up, else queue; calls ``too_slow`` once the receiver cannot keep up.

        The session hands this very method to the dispatcher as its ``offer`` (one call per
        receiver per event, the hot path of every delivery).
        """
        keeping_up = not (self._paused or self._owed or self._outbox)
        if self._plain and keeping_up:
            wire = self._conn.wire
            # Every receiver but the first finds the XML made: read it without a call.
            data = envelope.xml_bytes if wire is _XML else None
            if data is None:
                data = envelope.wire(wire)
            pending = self._pending
            if not pending:
                self._coalescer.mark(self)
            pending.append(data)
            if type(envelope) is MailEnvelope:
                self._pending_mail.append(envelope)
            return
        if self._closed:
            return
        pacing = self.pacing
        if pacing is not None:
            if pacing.holding:
                pacing.supersede(envelope)
            if keeping_up:
                # Paced (an open, unpaced stream took the branch above): the budget decides.
                data = envelope.wire(self._conn.wire)
                charge = self._conn.max_send_size(len(data))
                decision = pacing.decide(envelope, charge, self._class_of(envelope))
                if decision is _SEND:
                    if not self._pending:
                        self._coalescer.mark(self)
                    self._pending.append(data)
                    self._pending_charge += charge
                    if type(envelope) is MailEnvelope:
                        self._pending_mail.append(envelope)
                    return
                if decision is _SKIP:
                    self._hold(envelope)
                    return
        if self._queue(envelope) and self._too_slow is not None:
            self._too_slow()

    def offer_many(self, envelopes: list[Envelope]) -> None:
        """:meth:`offer` each of ``envelopes`` in order (group broadcasts: no stored mail among them)."""
        if self._plain and not (self._paused or self._owed or self._outbox):
            wire = self._conn.wire
            pending = self._pending
            if not pending:
                self._coalescer.mark(self)
            if wire is _XML:
                pending.extend([envelope.xml_bytes or envelope.wire(_XML) for envelope in envelopes])
            else:
                pending.extend([envelope.wire(wire) for envelope in envelopes])
            return
        for envelope in envelopes:
            self.offer(envelope)

    def flush_pending(self) -> None:
        """Write everything delivered during this loop iteration in one system call."""
        pending = self._pending
        if not pending:
            return
        transport = self._transport
        if transport is not None and not self._closed:
            out = self._conn.send_data(pending[0] if len(pending) == 1 else b"".join(pending))
            chunk = self._write_chunk
            if chunk and len(out) > chunk:
                view = memoryview(out)
                for start in range(0, len(out), chunk):
                    transport.write(view[start : start + chunk])
            else:
                transport.write(out)
            if self.pacing is not None:
                self.pacing.refund(self._pending_charge - len(out))
            # Handed to the transport: the last point a TCP server can observe (there is no
            # application acknowledgement), so stored mail counts as delivered from here.
            for mail in self._pending_mail:
                mail.written()
        pending.clear()
        self._pending_mail.clear()
        self._pending_charge = 0

    def answer(self, data: bytes) -> None:
        """Write a protocol reply in stream order, once the budget (if any) pays for its bytes."""
        if self._transport is None or self._closed or not data:
            return
        self.flush_pending()
        self._owed.append(data)
        self.drain()

    def _own_group(self, envelope: Envelope) -> bool:
        # The sender reports to one of this receiver's own (write) groups: its team, not a neighbour's.
        return not envelope.origin.groups.isdisjoint(self.write_groups)

    def _class_of(self, envelope: Envelope) -> Priority:
        return delivery_priority(envelope.priority, own_group=self._own_group(envelope))

    # --- the slow paths ----------------------------------------------------------------------
    def _queue(self, envelope: Envelope) -> bool:
        """Queue what cannot go now (coalescing positions); True once the receiver is too slow to keep."""
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = Outbox(self._max_items)
        outbox.put(envelope, now_ms=self._clock.now_ms(), own_group=self._own_group(envelope))
        if self.pacing is not None and not self._paused:
            if self._class_of(envelope) in COALESCED_CLASSES:
                self._schedule_drain(envelope)
            else:
                # Urgent traffic goes as soon as the budget pays for it, whatever positions are queued.
                self.drain()
        return self.watch.outbox_full(outbox.full)

    def _hold(self, envelope: Envelope) -> None:
        """Keep a thinned position: if its uid stops reporting, this is the report that must still go."""
        assert self.pacing is not None
        due = self.pacing.hold(envelope, self._class_of(envelope))
        if due is not None and not self._paused:
            self._schedule(due)

    def _schedule_drain(self, envelope: Envelope) -> None:
        """Look at the queue again once the budget could pay for ``envelope``."""
        pacing = self.pacing
        if pacing is None or pacing.retry_scheduled or self._transport is None:
            return
        size = self._conn.max_send_size(len(envelope.wire(self._conn.wire)))
        self._schedule(pacing.retry_in(envelope, size, self._class_of(envelope)))

    def _schedule(self, delay: float) -> None:
        if self._transport is None or self._closed or self.pacing is None:
            return
        self.pacing.schedule(delay)

    def _retry_drain(self) -> None:
        """When the budget has refilled: queue held reports thinning now lets go, then drain."""
        if self._closed or self.pacing is None:
            return
        released = self.pacing.release()
        if released:
            outbox = self._outbox
            if outbox is None:
                outbox = self._outbox = Outbox(self._max_items)
            now_ms = self._clock.now_ms()
            for envelope in released:
                outbox.put(envelope, now_ms=now_ms, own_group=self._own_group(envelope))
        if not self._paused:
            self.drain()

    def _pay_owed(self, transport: asyncio.WriteTransport) -> float | None:
        """Write owed replies the budget pays for; seconds to wait for the next, or None when all went."""
        owed, pacing = self._owed, self.pacing
        while owed:
            data = owed[0]
            if pacing is not None:
                wait = pacing.pay_reply(len(data))
                if wait is not None:
                    return wait
            owed.popleft()
            transport.write(data)
        return None

    def drain(self) -> None:
        """Write what is pending, then owed replies, then the outbox, as far as socket and budget allow."""
        transport = self._transport
        if transport is None:
            return
        self.flush_pending()
        wait = self._pay_owed(transport) if self._owed else None
        outbox = self._outbox
        if outbox is not None and not self._owed:
            wait = self._drain_outbox(outbox)
        pacing = self.pacing
        if pacing is not None:
            waits = [w for w in (wait, pacing.due_in()) if w is not None]
            if waits and not self._paused:
                self._schedule(min(waits))
        if outbox is not None and not outbox.full:
            self.watch.outbox_not_full()

    def _drain_outbox(self, outbox: Outbox) -> float | None:
        """Write what the socket and budget take, in outbox order; seconds until a deferred one could go.

        A position the budget defers (it must leave a reserve) does not hold back the urgent classes
        queued behind it: they are served as long as the budget pays for them.
        """
        now = self._clock.now_ms()
        conn = self._conn
        wire = conn.wire
        pacing = self.pacing
        # Queued frames leave in batches through the pending batch: one write per batch and, on a
        # compressed stream, one sync flush (a flush per frame costs bytes on exactly the links
        # that fall behind).
        pending = self._pending
        batched = 0
        deferred: list[tuple[Envelope, int]] = []
        urgent_only = False
        while not self._paused and outbox:
            if pacing is None:
                envelope = outbox.pop(now)
                if envelope is None:
                    break
                data = envelope.wire(wire)
                charge = len(data)
            else:
                envelope = outbox.peek(now, urgent_only=urgent_only)
                if envelope is None:
                    break
                data = envelope.wire(wire)
                charge = conn.max_send_size(len(data))
                decision = pacing.decide(envelope, charge, self._class_of(envelope))
                if decision is Decision.DEFER:
                    deferred.append((envelope, charge))
                    if urgent_only or self._class_of(envelope) not in COALESCED_CLASSES:
                        break
                    urgent_only = True
                    continue
                outbox.pop(now, urgent_only=urgent_only)
                if decision is Decision.SKIP:
                    self._hold(envelope)
                    continue
            pending.append(data)
            self._pending_charge += charge
            if type(envelope) is MailEnvelope:
                self._pending_mail.append(envelope)
            batched += len(data)
            if batched >= _DRAIN_BATCH_BYTES:
                self.flush_pending()
                batched = 0
        self.flush_pending()
        if pacing is None or not deferred:
            return None
        # After the flush: what compression saved is back in the budget and shortens the wait.
        return min(pacing.retry_in(e, c, self._class_of(e)) for e, c in deferred)

    # --- statistics --------------------------------------------------------------------------
    def statistics(self) -> dict[str, int]:
        """Outbox counters and delivery gauges of the session (summed over sessions for the metrics)."""
        budget = self.pacing.statistics() if self.pacing is not None else {
            "thinned": 0, "held": 0, "thinning": 0, "budget_bytes_per_s": 0,
        }
        state = {**budget, "paused": int(self._paused)}
        if self._outbox is None:
            return {"queued": 0, "dropped": 0, "coalesced": 0, "queued_bytes": 0, **state}
        stats = self._outbox.statistics()
        out = {
            "queued": stats.queued,
            "dropped": stats.dropped_overflow + stats.dropped_stale,
            "coalesced": stats.coalesced,
            "queued_bytes": stats.bytes,
            **state,
        }
        for name, count in stats.queued_by_class.items():
            out[f"queued_{name.lower()}"] = count
        return out
