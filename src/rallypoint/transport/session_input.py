"""The reading side of one stream session: bytes in, validated events into ``Ingest``, replies out.

Protocol replies (pong, upgrade answer) are written by the session's output in stream order; input
that breaks the rules is counted per reason, logged (the first few per session only) and, when the
peer floods or the framing cannot recover, ends the session.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from rallypoint.errors import RemoteProtocolError
from rallypoint.protocol.connection import (
    NEED_DATA,
    ConnectionClosed,
    CotConnection,
    EventReceived,
    EventRejected,
    PingReceived,
    UpgradeRequested,
)
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.transport.session_limits import SessionLimits
from rallypoint.transport.session_output import SessionOutput

if TYPE_CHECKING:
    from rallypoint.transport.context import TransportContext

log = logging.getLogger(__name__)

REJECTIONS_LOGGED_PER_SESSION = 20


class Reader(Protocol):
    """What the reading side needs of its session: who it is, what it sends as, and how to end it."""

    @property
    def id(self) -> str: ...

    @property
    def peer(self) -> str: ...

    @property
    def origin(self) -> Origin: ...

    def close(self, reason: str, *, abort: bool = False) -> None: ...


class SessionInput:
    """Feeds one session's ``CotConnection`` and acts on what comes out of it."""

    __slots__ = (
        "_conn", "_ctx", "_limits", "_output", "_rejections_logged", "_session", "last_rx", "partial_since",
        "transport_name",
    )

    def __init__(
        self, session: Reader, ctx: TransportContext, conn: CotConnection, output: SessionOutput,
        limits: SessionLimits, *, transport_name: str, now: float,
    ) -> None:
        self._session = session
        self._ctx = ctx
        self._conn = conn
        self._output = output
        self._limits = limits
        self.transport_name = transport_name
        self._rejections_logged = 0
        self.last_rx = now
        # When an incomplete event started waiting in the buffer (slow-loris detection).
        self.partial_since: float | None = None

    def data_received(self, data: bytes) -> None:
        """Take one read from the socket."""
        now = self.last_rx = self._ctx.clock.monotonic()
        conn = self._conn
        try:
            conn.receive_data(data)
        except RemoteProtocolError as exc:
            self.rejected(exc.reason, exc.detail)
            self._session.close("protocol_error", abort=True)
            return
        # The events of one read are delivered as runs (Dispatcher.hold): the same order to every
        # receiver, one offer call per receiver and run instead of one per receiver and event.
        dispatcher = self._ctx.dispatcher
        if dispatcher is not None:
            dispatcher.hold()
        try:
            self._process(now)
        finally:
            if dispatcher is not None:
                dispatcher.release()
            if conn.buffered:
                if self.partial_since is None:
                    self.partial_since = now
            else:
                self.partial_since = None

    def _process(self, now: float) -> None:
        ctx = self._ctx
        conn = self._conn
        output = self._output
        limits = self._limits
        # The events of one read arrived together: one wall-clock reading stamps them all.
        received_ms = ctx.clock.now_ms()
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError as exc:
                self.rejected(exc.reason, exc.detail)
                if exc.fatal:
                    self._session.close("protocol_error")
                    return
                continue
            if ev is NEED_DATA:
                return
            if isinstance(ev, EventReceived):
                if not limits.allow(now):
                    self._rate_refused()
                    continue
                if ev.unknown_fields:
                    # Accepted (newer clients add fields), but counted so operators see version skew.
                    ctx.metrics.tolerated.labels("unknown_protobuf_field", self.transport_name).inc()
                    log.debug("unknown protobuf fields dropped",
                              extra={"session": self._session.id, "peer": self._session.peer})
                try:
                    ctx.ingest.accept(Envelope(ev.event, self._session.origin, received_ms))
                except RemoteProtocolError as exc:
                    self.rejected(exc.reason, exc.detail)
            elif isinstance(ev, PingReceived):
                # The connection's output is one ordered (maybe compressed) stream: what was
                # delivered earlier is written before the pong is produced.
                self._deliver_held()
                output.flush_pending()
                output.answer(conn.pong(ctx.clock.now_ms()))
            elif isinstance(ev, UpgradeRequested):
                self._deliver_held()
                output.flush_pending()
                output.answer(conn.respond_upgrade(True, ctx.clock.now_ms()))
                ctx.metrics.protocol_upgrades.inc()
                log.info(
                    "protocol upgraded",
                    extra={"session": self._session.id, "version": ev.version, "compression": ev.compression or "none"},
                )
            elif isinstance(ev, EventRejected):
                self.rejected(ev.reason, ev.detail)
            elif isinstance(ev, ConnectionClosed):
                return

    def _deliver_held(self) -> None:
        dispatcher = self._ctx.dispatcher
        if dispatcher is not None:
            dispatcher.flush()

    def _rate_refused(self) -> None:
        self.rejected("rate_limited", "message rate limit exceeded")
        if self._limits.flooding:
            self._session.close("rate_limit", abort=True)

    def rejected(self, reason: str, detail: str) -> None:
        """Count (and log, the first few times) input this session sent that was refused."""
        self._ctx.metrics.rejected.labels(reason, self.transport_name).inc()
        # Every rejection is counted, but a flooding peer must not flood the log: the first few of a
        # session are logged, then one line says the rest are only counted.
        self._rejections_logged += 1
        logged = self._rejections_logged
        session = self._session
        if logged <= REJECTIONS_LOGGED_PER_SESSION:
            extra = {"session": session.id, "peer": session.peer, "reason": reason, "detail": detail}
            log.warning("input rejected", extra=extra)
        elif logged == REJECTIONS_LOGGED_PER_SESSION + 1:
            log.warning(
                "further input rejections of this session are counted, not logged",
                extra={"session": session.id, "peer": session.peer, "reason": reason},
            )
