"""One streaming client: a sans-IO ``CotConnection`` driven by an asyncio ``Protocol`` plus an outbox.

Deliveries are written straight to the socket while it keeps up (no task switch, no copy: the
same encoded bytes go to every receiver); when the kernel buffer fills, asyncio pauses us and
envelopes wait in the bounded, coalescing outbox until it drains. That direct path stays here;
draining, held reports, owed protocol replies and budget retries are in ``session_output``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from rallypoint.delivery.budget import Decision, HeldReports, ThinningPolicy
from rallypoint.delivery.outbox import Outbox
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot_type import Priority, delivery_priority
from rallypoint.protocol.connection import (
    NEED_DATA,
    ConnectionClosed,
    CotConnection,
    EventReceived,
    EventRejected,
    PingReceived,
    UpgradeRequested,
)
from rallypoint.routing.envelope import ANON_GROUP, Envelope
from rallypoint.security.revocation import serial_of
from rallypoint.services.mailbox_inflight import MailEnvelope
from rallypoint.services.messages import groups_changed
from rallypoint.transport.session_limits import SessionLimits, budget_policy
from rallypoint.transport.session_output import SessionOutput

if TYPE_CHECKING:
    from rallypoint.transport.context import TransportContext

log = logging.getLogger(__name__)

REJECTIONS_LOGGED_PER_SESSION = 20

_ANON = frozenset({ANON_GROUP})


class StreamSession(asyncio.BufferedProtocol):
    """A connected TAK client over TCP or TLS (TLS is a parameter of the listener, not a subclass)."""

    # Reports when stored mail was written (MailEnvelope.written): the mailbox counts it delivered then.
    confirms_writes = True

    def __init__(self, ctx: TransportContext, *, transport_name: str) -> None:
        self._ctx = ctx
        self.transport_name = transport_name
        self.id = ctx.ids.session_id(transport_name)
        self.read_groups: frozenset[str] = _ANON
        self.write_groups: frozenset[str] = _ANON
        self.principal: str | None = None
        self.cert_serial: int | None = None
        self.inactive_groups: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
        self.peer: str = "?"
        self._transport: asyncio.Transport | None = None
        self._conn = CotConnection(
            ctx.limits, offer_protobuf=ctx.offer_protobuf, offer_compression=ctx.offer_compression
        )
        # Created on first back-pressure: most sessions keep up and never need one (memory per idle client).
        self._outbox: Outbox | None = None
        # Optional per-session link budget: positions are thinned before urgent traffic waits.
        # Set once the client's identity and groups are known (budgets can depend on its class).
        self._policy: ThinningPolicy | None = None
        # Under a budget: each thinned uid's latest position, sent once thinning lets that uid go.
        self._held: HeldReports | None = None
        # Protocol replies (pong, offer, upgrade answer) waiting for the budget, in write order and
        # already in their final wire form: nothing else is written until they are.
        self._owed: deque[bytes] = deque()
        self._paused = False
        self._pending: list[bytes] = []
        # Budget taken for ``_pending``: on a compressed stream, each frame's worst case, of which
        # what compression saved is given back once the batch is written.
        self._pending_charge = 0
        # Stored mail among ``_pending``: confirmed to the mailbox once its bytes reach the transport.
        self._pending_mail: list[MailEnvelope] = []
        self._rejections_logged = 0
        self._closed = False
        self.last_rx = ctx.clock.monotonic()
        # When an incomplete event started waiting in the buffer (slow-loris detection).
        self.partial_since: float | None = None
        # Since when the socket has refused more data (the receiver stopped reading).
        self.paused_since: float | None = None
        self._limits = SessionLimits(ctx, self.last_rx)
        self.origin = ctx.ids.origin(self.id)
        # Outbox drain, held reports, owed replies and the retry timer: the slow paths of output.
        self._output = SessionOutput(self, ctx)

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they implement the same interface.
        self._transport = transport  # type: ignore[assignment]
        # Room for a burst (one loop iteration can deliver hundreds of events to a receiver) before
        # back-pressure turns on and positions start to coalesce.
        transport.set_write_buffer_limits(  # type: ignore[attr-defined]
            high=self._ctx.write_buffer_high, low=self._ctx.write_buffer_high // 4
        )
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            self.principal = self._ctx.principal_of(der)
            self.cert_serial = serial_of(der)
            if self._ctx.is_revoked(self.cert_serial):
                log.warning("revoked certificate refused", extra={"peer": self.peer, "principal": self.principal})
                self._ctx.audit(
                    self.principal or "-", "login.failed", "stream", {"reason": "revoked", "peer": self.peer}
                )
                self._refuse(transport, "revoked")
                return
        access = self._ctx.access_of(self.principal)
        if access is None:
            log.warning("disabled account refused", extra={"peer": self.peer, "principal": self.principal})
            self._ctx.audit(self.principal or "-", "login.failed", "stream", {"reason": "disabled", "peer": self.peer})
            self._refuse(transport, "disabled")
            return
        self.write_groups, self.read_groups = access
        ctx = self._ctx
        # Checked before admission takes per-address and per-identity slots, so a refusal here
        # holds nothing that connection_lost would have to give back.
        if len(ctx.sessions) >= ctx.max_connections:
            log.warning("connection limit reached", extra={"peer": self.peer, "limit": "max_connections"})
            self._refuse(transport, "max_connections")
            return
        if not self._admit(transport):
            return
        self.apply_budget()
        if self.principal is not None:
            ctx.audit(self.principal, "login.ok", "stream", {"peer": self.peer, "transport": self.transport_name})
        self.origin = ctx.ids.origin(self.id, self.write_groups, self.principal)
        ctx.metrics.connections.labels(self.transport_name).inc()
        ctx.metrics.connections_total.labels(self.transport_name).inc()
        ctx.sessions.add(self)
        for envelope in ctx.hub.joined(self):
            self.offer(envelope)
        # Like TAK Server: the latest picture first, then the protocol offer.
        announce = self._conn.announce(ctx.clock.now_ms(), ctx.ids.node)
        if announce:
            self._output.answer(announce)
        log.info("client connected", extra={"session": self.id, "peer": self.peer, "principal": self.principal})

    def get_buffer(self, sizehint: int) -> bytearray:
        # Bounded reads: a flooding sender is served in slices, so each loop iteration also gets to
        # write to receivers before more input is parsed (fairness between reading and writing).
        # One buffer serves every session: each read is copied out before the next one starts.
        return self._ctx.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._ctx.read_buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        ctx = self._ctx
        now = self.last_rx = ctx.clock.monotonic()
        conn = self._conn
        try:
            conn.receive_data(data)
        except RemoteProtocolError as exc:
            self._rejected(exc.reason, exc.detail)
            self.close("protocol_error", abort=True)
            return
        try:
            self._process(now)
        finally:
            if conn.buffered:
                if self.partial_since is None:
                    self.partial_since = now
            else:
                self.partial_since = None

    def _process(self, now: float) -> None:
        ctx = self._ctx
        conn = self._conn
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError as exc:
                self._rejected(exc.reason, exc.detail)
                if exc.fatal:
                    self.close("protocol_error")
                    return
                continue
            if ev is NEED_DATA:
                return
            if isinstance(ev, EventReceived):
                if not self._within_rate(now):
                    continue
                if ev.unknown_fields:
                    # Accepted (newer clients add fields), but counted so operators see version skew.
                    ctx.metrics.tolerated.labels("unknown_protobuf_field", self.transport_name).inc()
                    log.debug("unknown protobuf fields dropped", extra={"session": self.id, "peer": self.peer})
                try:
                    ctx.ingest.accept(Envelope(ev.event, self.origin, ctx.clock.now_ms()))
                except RemoteProtocolError as exc:
                    self._rejected(exc.reason, exc.detail)
            elif isinstance(ev, PingReceived):
                # The connection's output is one ordered (maybe compressed) stream: what was
                # delivered earlier is written before the pong is produced.
                self.flush_pending()
                self._output.answer(conn.pong(ctx.clock.now_ms()))
            elif isinstance(ev, UpgradeRequested):
                self.flush_pending()
                self._output.answer(conn.respond_upgrade(True, ctx.clock.now_ms()))
                ctx.metrics.protocol_upgrades.inc()
                log.info(
                    "protocol upgraded",
                    extra={"session": self.id, "version": ev.version, "compression": ev.compression or "none"},
                )
            elif isinstance(ev, EventRejected):
                self._rejected(ev.reason, ev.detail)
            elif isinstance(ev, ConnectionClosed):
                return

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed and self._transport is None:
            return
        self._closed = True
        ctx = self._ctx
        stats = self.statistics()
        self._output.cancel_retry()
        # Stored mail cleared here was never written: not confirmed, so the mailbox keeps it.
        if self._outbox is not None:
            self._outbox.clear()
        if self._held is not None:
            self._held.clear()
        self._owed.clear()
        self._pending.clear()
        self._pending_mail.clear()
        self._limits.release()
        if ctx.sessions.discard(self):
            ctx.closed_totals["dropped"] += stats["dropped"]
            ctx.closed_totals["coalesced"] += stats["coalesced"]
            ctx.metrics.connections.labels(self.transport_name).dec()
            ctx.hub.left(self)
            log.info("client disconnected", extra={"session": self.id, "peer": self.peer})
        self._transport = None

    def pause_writing(self) -> None:
        # Bytes already pending go out with the next flush; later deliveries wait in the outbox.
        self._paused = True
        self._ctx.closed_totals["pauses"] += 1
        if self.paused_since is None:
            self.paused_since = self._ctx.clock.monotonic()

    def resume_writing(self) -> None:
        self._paused = False
        self.paused_since = None
        self._output.drain()

    def regroup(self, write_groups: frozenset[str], read_groups: frozenset[str]) -> bool:
        """Apply changed group membership to this live session; tells the client with ``t-x-g-c``."""
        if (write_groups, read_groups) == (self.write_groups, self.read_groups):
            return False
        old_read = self.read_groups
        self.write_groups, self.read_groups = write_groups, read_groups
        self.origin = self._ctx.ids.origin(self.id, write_groups, self.principal)
        self._ctx.hub.regrouped(self, old_read)
        self.offer(Envelope(groups_changed(self._ctx.clock.now_ms()), self.origin, self._ctx.clock.now_ms()))
        return True

    # --- Subscriber --------------------------------------------------------------------------
    def offer(self, envelope: Envelope) -> None:
        """Send now if the socket keeps up, else queue (coalescing positions)."""
        if self._closed:
            return
        policy = self._policy
        if self._held:
            self._output.supersede_held(envelope)
        if not (self._paused or self._outbox or self._owed):
            data = envelope.wire(self._conn.wire)
            if policy is None:
                decision = Decision.SEND
            else:
                charge = self._conn.max_send_size(len(data))
                decision = self._decide(policy, envelope, charge)
            if decision is Decision.SEND:
                pending = self._pending
                if not pending:
                    self._ctx.coalescer.mark(self)
                pending.append(data)
                if policy is not None:
                    self._pending_charge += charge
                if type(envelope) is MailEnvelope:
                    self._pending_mail.append(envelope)
                return
            if decision is Decision.SKIP:
                self._output.hold(envelope)
                return
        if self._output.queue(envelope):
            log.warning("disconnecting slow receiver", extra={"session": self.id, "peer": self.peer})
            self.close("slow_receiver", abort=True)

    def _own_group(self, envelope: Envelope) -> bool:
        # The sender reports to one of this receiver's own (write) groups: its team, not a neighbour's.
        return not envelope.origin.groups.isdisjoint(self.write_groups)

    def _class_of(self, envelope: Envelope) -> Priority:
        return delivery_priority(envelope.priority, own_group=self._own_group(envelope))

    def _decide(self, policy: ThinningPolicy, envelope: Envelope, size: int) -> Decision:
        return policy.decide(envelope, size, self._ctx.clock.monotonic(), priority=self._class_of(envelope))

    def flush_pending(self) -> None:
        """Write everything delivered during this loop iteration in one system call."""
        pending = self._pending
        if not pending:
            return
        transport = self._transport
        if transport is not None and not self._closed:
            out = self._conn.send_data(pending[0] if len(pending) == 1 else b"".join(pending))
            transport.write(out)
            if self._policy is not None:
                self._policy.refund(self._pending_charge - len(out))
            # Handed to the transport: the last point a TCP server can observe (there is no
            # application acknowledgement), so stored mail counts as delivered from here.
            for mail in self._pending_mail:
                mail.written()
        pending.clear()
        self._pending_mail.clear()
        self._pending_charge = 0

    def apply_budget(self) -> None:
        """Set this client's byte budget from its class (identity and groups must be known)."""
        policy = budget_policy(self._ctx, self.principal, self.read_groups)
        if policy is not None:
            self._policy = policy

    # --- limits ------------------------------------------------------------------------------
    def _admit(self, transport: asyncio.BaseTransport) -> bool:
        """Per-address and per-identity connection limits; closes the connection when exceeded."""
        reason = self._limits.admit(self.peer, self.principal, self.last_rx)
        if reason is None:
            return True
        log.warning("connection limit reached", extra={"peer": self.peer, "principal": self.principal, "limit": reason})
        self._refuse(transport, reason)
        return False

    def _refuse(self, transport: asyncio.BaseTransport, reason: str) -> None:
        # connection_lost skips refused sessions, so whatever admission took is given back here.
        self._limits.release()
        self._ctx.metrics.sessions_closed.labels(reason).inc()
        self._transport = None
        self._closed = True
        transport.abort()  # type: ignore[attr-defined]

    def _within_rate(self, now: float) -> bool:
        limits = self._limits
        if limits.allow(now):
            return True
        self._rejected("rate_limited", "message rate limit exceeded")
        if limits.flooding:
            self.close("rate_limit", abort=True)
        return False

    # --- internals ---------------------------------------------------------------------------
    def _rejected(self, reason: str, detail: str) -> None:
        self._ctx.metrics.rejected.labels(reason, self.transport_name).inc()
        # Every rejection is counted, but a flooding peer must not flood the log: the first few of a
        # session are logged, then one line says the rest are only counted.
        self._rejections_logged += 1
        logged = self._rejections_logged
        if logged <= REJECTIONS_LOGGED_PER_SESSION:
            log.warning(
                "input rejected", extra={"session": self.id, "peer": self.peer, "reason": reason, "detail": detail}
            )
        elif logged == REJECTIONS_LOGGED_PER_SESSION + 1:
            log.warning(
                "further input rejections of this session are counted, not logged",
                extra={"session": self.id, "peer": self.peer, "reason": reason},
            )

    def close(self, reason: str, *, abort: bool = False) -> None:
        """Close this session (other sessions are unaffected)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._ctx.metrics.sessions_closed.labels(reason).inc()
        if abort:
            transport.abort()
        else:
            transport.close()

    def flush_and_close(self) -> None:
        """Write what is queued (if the socket takes it) and close: used on shutdown."""
        self._output.drain()
        self.close("shutdown")

    def statistics(self) -> dict[str, int]:
        """Outbox counters of this session (summed over sessions for the metrics)."""
        return self._output.statistics()
