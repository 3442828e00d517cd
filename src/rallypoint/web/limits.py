"""Limits on HTTP requests: body size (uploads declare their own, larger limit) and receive deadlines.

uvicorn bounds the size of a request head (``h11_max_incomplete_event_size``) and idle time between
requests (``timeout_keep_alive``), but nothing bounds how long a client may take to send a request:
any byte cancels the keep-alive timer, and before the first request there is no timer at all. So a
client sending a request line a byte at a time, or a body that stops half way, would hold its
connection (and a ``limit_concurrency`` slot) for ever. :class:`HttpGuard` adds the missing
deadlines in the HTTP protocol itself, below the application.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class BodySizeLimit:
    """Answer 413 when a request body exceeds the limit, whether declared or streamed.

    ``per_path`` raises the limit for specific paths (data package uploads); those endpoints still
    enforce their own limit while streaming to disk. ``per_pattern`` does the same for paths matching
    a regular expression (``(pattern, limit)``, first match wins), such as a mission's plan.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        per_path: Mapping[str, int] | None = None,
        per_pattern: Sequence[tuple[str, int]] = (),
        on_reject: Callable[[], None] | None = None,
    ) -> None:
        self._app = app
        self._max = max_bytes
        self._per_path = dict(per_path or {})
        self._per_pattern = [(re.compile(pattern), limit) for pattern, limit in per_pattern]
        self._on_reject = on_reject
        self.rejected = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self._per_path.get(path, self._max)
        limit = next((larger for pattern, larger in self._per_pattern if pattern.fullmatch(path)), limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    self._rejected(scope)
                    await _too_large(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, limited_receive, tracking_send)
        except _TooLarge:
            self._rejected(scope)
            if not started:
                await _too_large(send)

    def _rejected(self, scope: Scope) -> None:
        self.rejected += 1
        if self._on_reject is not None:
            self._on_reject()
        log.warning("request body too large", extra={"path": scope.get("path", ""), "client": scope.get("client")})


class _TooLarge(Exception):
    pass


async def _too_large(send: Send) -> None:
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"request body too large"})


class HttpGuard:
    """Receive deadlines for HTTP connections, and counts of requests the HTTP limits refused.

    * head: the request line and headers must arrive within ``header_timeout_s`` of the
      connection being ready (after the TLS handshake) or of the previous response;
    * body: once the head is in, the body may go ``body_timeout_s`` without a byte, except
      while the application itself is not reading (flow control paused).

    A connection past its deadline is closed, counted and logged. ``0`` disables a deadline.
    """

    def __init__(self, *, header_timeout_s: float, body_timeout_s: float) -> None:
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.refused: dict[str, int] = {"body_too_large": 0, "header_timeout": 0, "body_timeout": 0}

    def body_too_large(self) -> None:
        """Count one body refused by :class:`BodySizeLimit`."""
        self.refused["body_too_large"] += 1

    def counters(self) -> list[tuple[str, str, float]]:
        """``(name, help, value)`` counters for the metrics endpoint."""
        return [
            ("rallypoint_http_body_too_large", "HTTP requests refused because the body exceeded its limit",
             float(self.refused["body_too_large"])),
            ("rallypoint_http_header_timeouts", "HTTP connections closed because a request head arrived too slowly",
             float(self.refused["header_timeout"])),
            ("rallypoint_http_body_timeouts", "HTTP connections closed because a request body stalled",
             float(self.refused["body_timeout"])),
        ]

    def protocol_class(self, base: type[H11Protocol]) -> type[H11Protocol]:
        """``base`` with these deadlines (``base`` may add behaviour of its own, e.g. peer certificates)."""
        guard = self

        class DeadlineProtocol(base):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.deadline: asyncio.TimerHandle | None = None

            def connection_made(self, transport: Any) -> None:
                super().connection_made(transport)
                guard._arm(self, "header_timeout")

            def data_received(self, data: bytes) -> None:
                super().data_received(data)
                guard._after_data(self)

            def on_response_complete(self) -> None:
                super().on_response_complete()
                # Waiting for the next request (pipelined ones are already handled above).
                if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                    guard._arm(self, "header_timeout")

            def connection_lost(self, exc: Exception | None) -> None:
                guard._cancel(self)
                super().connection_lost(exc)

        return DeadlineProtocol

    def _after_data(self, proto: Any) -> None:
        if proto.transport.is_closing() or proto.transport.get_protocol() is not proto:
            self._cancel(proto)  # closed, or handed over to a WebSocket protocol
            return
        state = proto.conn.their_state
        if state is h11.IDLE:
            if proto.deadline is None:
                self._arm(proto, "header_timeout")
        elif state is h11.SEND_BODY:
            self._arm(proto, "body_timeout")  # restarted by every byte of body
        else:
            self._cancel(proto)  # the whole request is in; the application has it

    def _arm(self, proto: Any, reason: str) -> None:
        self._cancel(proto)
        timeout = self.header_timeout_s if reason == "header_timeout" else self.body_timeout_s
        if timeout > 0:
            proto.deadline = proto.loop.call_later(timeout, self._expired, proto, reason)

    def _cancel(self, proto: Any) -> None:
        if proto.deadline is not None:
            proto.deadline.cancel()
            proto.deadline = None

    def _expired(self, proto: Any, reason: str) -> None:
        proto.deadline = None
        transport = proto.transport
        if transport.is_closing():
            return
        if reason == "body_timeout" and proto.flow.read_paused:
            # The application is behind, not the client: wait for it to read.
            self._arm(proto, reason)
            return
        self.refused[reason] += 1
        log.warning("slow HTTP client disconnected", extra={"reason": reason, "client": proto.client})
        # Abort, not close: nothing is owed to this client, and a TLS close would wait for its reply.
        transport.abort()
