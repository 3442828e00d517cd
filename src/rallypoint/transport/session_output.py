"""The slow paths of one stream session's output: outbox drain, held reports, owed replies, retries.

While a client keeps up, ``StreamSession.offer`` appends straight to the session's pending batch
and nothing here runs. Once the socket pushes back, the link budget defers or thins traffic, or a
protocol reply has to wait for the budget, the session hands over to this class: the outbox drains
in batches, thinned positions are held per uid, owed replies are paid for in stream order, and a
timer looks at the queue again when the budget has refilled.

The state the per-event path reads (pending batch, outbox, held reports, owed replies, the paused
flag) stays on the session, where that path finds it in one lookup; this class holds the retry
timer and works on the session it belongs to.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rallypoint.delivery.budget import Decision, HeldReports
from rallypoint.delivery.outbox import Outbox
from rallypoint.model.cot_type import COALESCED_CLASSES, DELETE
from rallypoint.routing.envelope import Envelope
from rallypoint.services.mailbox_inflight import MailEnvelope

if TYPE_CHECKING:
    from rallypoint.transport.context import TransportContext
    from rallypoint.transport.session import StreamSession

# Bytes of queued frames written (and compressed) together when an outbox drains.
_DRAIN_BATCH_BYTES = 32 * 1024
# Longest wait before a budgeted session looks at its queue again (bounds a timer on odd input).
_MAX_RETRY_S = 60.0


class SessionOutput:
    """Drains, holds and paces what one session could not write at once; owned by that session."""

    __slots__ = ("_ctx", "_full_since", "_retry_at", "_session", "retry")

    def __init__(self, session: StreamSession, ctx: TransportContext) -> None:
        self._session = session
        self._ctx = ctx
        self.retry: asyncio.TimerHandle | None = None
        self._retry_at = 0.0
        # Since when the outbox has been full (the receiver takes less than it is sent).
        self._full_since: float | None = None

    def queue(self, envelope: Envelope) -> bool:
        """Queue what cannot go now (coalescing positions); True once the receiver is too slow to keep."""
        session = self._session
        outbox = session._outbox
        if outbox is None:
            outbox = session._outbox = Outbox(self._ctx.outbox_max_items)
        outbox.put(envelope, now_ms=self._ctx.clock.now_ms(), own_group=session._own_group(envelope))
        if session._policy is not None and not session._paused:
            if session._class_of(envelope) in COALESCED_CLASSES:
                self.schedule_drain(envelope)
            else:
                # Urgent traffic goes as soon as the budget pays for it, whatever positions are queued.
                self.drain()
        return self._too_slow()

    # --- held reports ------------------------------------------------------------------------
    def supersede_held(self, envelope: Envelope) -> None:
        """Forget the held report this envelope replaces (a newer report, or a delete of its item)."""
        held = self._session._held
        assert held is not None
        event = envelope.event
        if event.type == DELETE and event.detail.link_uid is not None:
            # The held report would bring the deleted item back.
            held.discard(event.detail.link_uid)
        elif envelope.priority in COALESCED_CLASSES:
            held.discard(event.uid)

    def hold(self, envelope: Envelope) -> None:
        """Keep a thinned position: if its uid stops reporting, this is the report that must still go."""
        session = self._session
        policy = session._policy
        assert policy is not None
        held = session._held
        if held is None:
            held = session._held = HeldReports(self._ctx.outbox_max_items)
        held.hold(envelope, session._class_of(envelope))
        due = held.due_in(policy, self._ctx.clock.monotonic())
        if due is not None and not session._paused:
            self.schedule(due)

    # --- retry timer -------------------------------------------------------------------------
    def schedule_drain(self, envelope: Envelope) -> None:
        """Look at the queue again once the budget could pay for ``envelope``."""
        session = self._session
        policy = session._policy
        if policy is None or self.retry is not None or session._transport is None:
            return
        conn = session._conn
        size = conn.max_send_size(len(envelope.wire(conn.wire)))
        self.schedule(
            policy.retry_in(envelope, size, self._ctx.clock.monotonic(), priority=session._class_of(envelope))
        )

    def schedule(self, delay: float) -> None:
        """Look at the queue again in ``delay`` seconds, unless a look is already due sooner."""
        if self._session._transport is None or self._session._closed:
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + min(max(delay, 0.001), _MAX_RETRY_S)
        if self.retry is not None:
            if self._retry_at <= at:
                return
            self.retry.cancel()
        self._retry_at = at
        self.retry = loop.call_at(at, self.retry_drain)

    def cancel_retry(self) -> None:
        """Stop the timer (the session is gone)."""
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None

    def retry_drain(self) -> None:
        """What the timer does: queue held reports thinning now lets go, then drain."""
        self.retry = None
        session = self._session
        if session._closed:
            return
        held, policy = session._held, session._policy
        if held and policy is not None:
            released = held.release(policy, self._ctx.clock.monotonic())
            if released:
                outbox = session._outbox
                if outbox is None:
                    outbox = session._outbox = Outbox(self._ctx.outbox_max_items)
                now_ms = self._ctx.clock.now_ms()
                for envelope in released:
                    outbox.put(envelope, now_ms=now_ms, own_group=session._own_group(envelope))
        if not session._paused:
            self.drain()

    # --- owed replies and the outbox ---------------------------------------------------------
    def answer(self, data: bytes) -> None:
        """Write a protocol reply in stream order, once the budget (if any) pays for its bytes."""
        session = self._session
        if session._transport is None or session._closed or not data:
            return
        session.flush_pending()
        session._owed.append(data)
        self.drain()

    def _pay_owed(self) -> float | None:
        """Write owed replies the budget pays for; seconds to wait for the next, or None when all went."""
        session = self._session
        transport, policy, owed = session._transport, session._policy, session._owed
        assert transport is not None
        while owed:
            data = owed[0]
            if policy is not None:
                # A reply larger than the whole bucket would wait forever; none is (the burst holds an event).
                size = min(len(data), policy.budget.burst_bytes)
                now = self._ctx.clock.monotonic()
                if not policy.spend_urgent(size, now):
                    return policy.budget.wait_s(size, now)
            owed.popleft()
            transport.write(data)
        return None

    def drain(self) -> None:
        """Write what is pending, then owed replies, then the outbox, as far as socket and budget allow."""
        session = self._session
        if session._transport is None:
            return
        session.flush_pending()
        wait = self._pay_owed() if session._owed else None
        outbox = session._outbox
        if outbox is not None and not session._owed:
            wait = self._drain_outbox(outbox)
        policy = session._policy
        if policy is not None:
            held = session._held.due_in(policy, self._ctx.clock.monotonic()) if session._held else None
            waits = [w for w in (wait, held) if w is not None]
            if waits and not session._paused:
                self.schedule(min(waits))
        if outbox is not None and not outbox.full:
            self._full_since = None

    def _drain_outbox(self, outbox: Outbox) -> float | None:
        """Write what the socket and budget take, in outbox order; seconds until a deferred one could go.

        A position the budget defers (it must leave a reserve) does not hold back the urgent classes
        queued behind it: they are served as long as the budget pays for them.
        """
        session = self._session
        now = self._ctx.clock.now_ms()
        conn = session._conn
        wire = conn.wire
        policy = session._policy
        # Queued frames leave in batches through the pending batch: one write per batch and, on a
        # compressed stream, one sync flush (a flush per frame costs bytes on exactly the links
        # that fall behind).
        pending = session._pending
        batched = 0
        deferred: list[tuple[Envelope, int]] = []
        urgent_only = False
        while not session._paused and outbox:
            if policy is None:
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
                decision = session._decide(policy, envelope, charge)
                if decision is Decision.DEFER:
                    deferred.append((envelope, charge))
                    if urgent_only or session._class_of(envelope) not in COALESCED_CLASSES:
                        break
                    urgent_only = True
                    continue
                outbox.pop(now, urgent_only=urgent_only)
                if decision is Decision.SKIP:
                    self.hold(envelope)
                    continue
            pending.append(data)
            session._pending_charge += charge
            if type(envelope) is MailEnvelope:
                session._pending_mail.append(envelope)
            batched += len(data)
            if batched >= _DRAIN_BATCH_BYTES:
                session.flush_pending()
                batched = 0
        session.flush_pending()
        if policy is None or not deferred:
            return None
        # After the flush: what compression saved is back in the budget and shortens the wait.
        mono = self._ctx.clock.monotonic()
        return min(policy.retry_in(e, c, mono, priority=session._class_of(e)) for e, c in deferred)

    def _too_slow(self) -> bool:
        """Whether the outbox has stayed full past the slow-receiver timeout (the session must go)."""
        outbox = self._session._outbox
        if outbox is None or not outbox.full:
            return False
        now = self._ctx.clock.monotonic()
        if self._full_since is None:
            self._full_since = now
            return False
        return now - self._full_since > self._ctx.slow_receiver_timeout_s

    # --- statistics --------------------------------------------------------------------------
    def statistics(self) -> dict[str, int]:
        """Outbox counters and delivery gauges of the session (summed over sessions for the metrics)."""
        session = self._session
        policy = session._policy
        # Gauges of this session (summed over sessions they count thinning and paused sessions).
        state = {
            "thinned": policy.skipped if policy is not None else 0,
            "held": len(session._held) if session._held is not None else 0,
            "thinning": int(policy is not None and policy.thinning),
            "paused": int(session._paused),
            "budget_bytes_per_s": int(policy.budget.bytes_per_s) if policy is not None else 0,
        }
        if session._outbox is None:
            return {"queued": 0, "dropped": 0, "coalesced": 0, "queued_bytes": 0, **state}
        stats = session._outbox.statistics()
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
