"""One streaming client over TCP or TLS: an asyncio ``Protocol`` around a sans-IO ``CotConnection``.

This class is the session's life: admission (certificate, account, connection limits), its groups
and identity, joining and leaving the directory, closing. The work is done by parts that each own
their state: ``SessionInput`` (bytes in, events to ``Ingest``), ``SessionOutput`` (everything
written, in stream order: direct writes, the outbox, owed replies) with its ``Pacing`` (link
budget) and ``SlowReceiverWatch``, and ``SessionLimits`` (admission and input rate).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from rallypoint.protocol.connection import CotConnection
from rallypoint.routing.envelope import ANON_GROUP, Envelope, Origin
from rallypoint.security.revocation import serial_of
from rallypoint.services.messages import groups_changed
from rallypoint.transport.session_input import SessionInput
from rallypoint.transport.session_limits import SessionLimits, budget_policy
from rallypoint.transport.session_output import SessionOutput
from rallypoint.transport.write_limits import write_limits

if TYPE_CHECKING:
    from rallypoint.transport.context import TransportContext

log = logging.getLogger(__name__)

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
        self._closed = False
        self.origin: Origin = ctx.ids.origin(self.id)
        conn = CotConnection(ctx.limits, offer_protobuf=ctx.offer_protobuf, offer_compression=ctx.offer_compression)
        self._conn = conn
        now = ctx.clock.monotonic()
        self._limits = SessionLimits(ctx, now)
        self.output = SessionOutput(
            conn,
            ctx.clock,
            ctx.coalescer,
            max_items=ctx.outbox_max_items,
            slow_timeout_s=ctx.slow_receiver_timeout_s,
            too_slow=self._too_slow,
        )
        # Deliveries call the output directly: one Python call less per receiver per event.
        self.offer = self.output.offer  # type: ignore[method-assign]
        self.offer_many = self.output.offer_many
        self.input = SessionInput(self, ctx, conn, self.output, self._limits, transport_name=transport_name, now=now)

    # --- what the node's sweeps read ---------------------------------------------------------
    @property
    def connection(self) -> CotConnection:
        """The sans-IO protocol state of this session (wire format, negotiation)."""
        return self._conn

    @property
    def last_rx(self) -> float:
        return self.input.last_rx

    @property
    def partial_since(self) -> float | None:
        """When an incomplete event started waiting in the buffer (slow-loris detection)."""
        return self.input.partial_since

    @property
    def paused_since(self) -> float | None:
        """Since when the socket has refused more data (the receiver stopped reading)."""
        return self.output.watch.paused_since

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they implement the same interface.
        self._transport = transport  # type: ignore[assignment]
        limits = write_limits(self._ctx.write_buffer_high, tls=transport.get_extra_info("ssl_object") is not None)
        self.output.attach(transport, write_chunk=limits.chunk)  # type: ignore[arg-type]
        transport.set_write_buffer_limits(high=limits.high, low=limits.low)  # type: ignore[attr-defined]
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
        self._set_groups(*access)
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
        ctx.metrics.connections.labels(self.transport_name).inc()
        ctx.metrics.connections_total.labels(self.transport_name).inc()
        ctx.sessions.add(self)
        # Local: the emergencies, kept mail and picture this node holds for its own new session
        # (as in SessionHub.regrouped), in order, before anything delivered later.
        for envelope in ctx.hub.joined(self):
            self.offer(envelope)
        # Like TAK Server: the latest picture first, then the protocol offer.
        announce = self._conn.announce(ctx.clock.now_ms(), ctx.ids.node)
        if announce:
            self.output.answer(announce)
        log.info("client connected", extra={"session": self.id, "peer": self.peer, "principal": self.principal})

    def get_buffer(self, sizehint: int) -> bytearray:
        # Bounded reads: a flooding sender is served in slices, so each loop iteration also gets to
        # write to receivers before more input is parsed (fairness between reading and writing).
        # One buffer serves every session: each read is copied out before the next one starts.
        return self._ctx.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        # One copy out of the shared buffer (slicing the bytearray first would make two).
        with memoryview(self._ctx.read_buffer) as view:
            self.input.data_received(bytes(view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        self.input.data_received(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed and self._transport is None:
            return
        self._closed = True
        ctx = self._ctx
        stats = self.statistics()
        self.output.close()
        self._limits.release()
        if ctx.sessions.discard(self):
            ctx.closed_totals["dropped"] += stats["dropped"]
            ctx.closed_totals["coalesced"] += stats["coalesced"]
            ctx.metrics.connections.labels(self.transport_name).dec()
            ctx.hub.left(self)
            log.info("client disconnected", extra={"session": self.id, "peer": self.peer})
        self._transport = None

    def pause_writing(self) -> None:
        self._ctx.closed_totals["pauses"] += 1
        self.output.pause()

    def resume_writing(self) -> None:
        self.output.resume()

    def regroup(self, write_groups: frozenset[str], read_groups: frozenset[str]) -> bool:
        """Apply changed group membership to this live session; tells the client with ``t-x-g-c``."""
        if (write_groups, read_groups) == (self.write_groups, self.read_groups):
            return False
        old_read = self.read_groups
        self._set_groups(write_groups, read_groups)
        self._ctx.hub.regrouped(self, old_read)
        now = self._ctx.clock.now_ms()
        # A protocol reply to this very socket (its own groups changed): it never concerns another node.
        self.offer(Envelope(groups_changed(now), self.origin, now))
        return True

    def _set_groups(self, write_groups: frozenset[str], read_groups: frozenset[str]) -> None:
        self.write_groups, self.read_groups = write_groups, read_groups
        self.output.write_groups = write_groups
        self.origin = self._ctx.ids.origin(self.id, write_groups, self.principal, read_groups)

    # --- Subscriber --------------------------------------------------------------------------
    def offer(self, envelope: Envelope) -> None:
        """Send now if the socket keeps up, else queue (coalescing positions).

        Shadowed in ``__init__`` by ``self.output.offer`` itself; kept for the ``Subscriber`` protocol.
        """
        self.output.offer(envelope)

    def _too_slow(self) -> None:
        log.warning("disconnecting slow receiver", extra={"session": self.id, "peer": self.peer})
        self.close("slow_receiver", abort=True)

    def flush_pending(self) -> None:
        """Write everything delivered during this loop iteration in one system call."""
        self.output.flush_pending()

    def apply_budget(self) -> None:
        """Set this client's byte budget from its class (identity and groups must be known)."""
        policy = budget_policy(self._ctx, self.principal, self.read_groups)
        if policy is not None:
            self.output.set_budget(policy)

    # --- limits ------------------------------------------------------------------------------
    def _admit(self, transport: asyncio.BaseTransport) -> bool:
        """Per-address and per-identity connection limits; closes the connection when exceeded."""
        reason = self._limits.admit(self.peer, self.principal, self.input.last_rx)
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
        self.output.close()
        transport.abort()  # type: ignore[attr-defined]

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
        self.output.drain()
        self.close("shutdown")

    def statistics(self) -> dict[str, int]:
        """Outbox counters of this session (summed over sessions for the metrics)."""
        return self.output.statistics()
