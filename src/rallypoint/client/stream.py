"""``CotStream``: send and receive Cursor-on-Target over TCP or TLS with asyncio.

XML by default; with ``protobuf=True`` the stream takes up the server's TAK protocol 1 offer, and
with ``compress=True`` it also asks for deflate stream compression (a Rallypoint extension, see
docs/protocol.md; a server without it answers with plain protobuf).
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections import deque
from collections.abc import Generator
from types import TracebackType
from typing import Any

from rallypoint.model.cot import CotEvent
from rallypoint.protocol.client_connection import ClientConnection, Negotiation
from rallypoint.protocol.connection import NEED_DATA, ConnectionClosed, EventReceived, EventRejected
from rallypoint.protocol.control import DEFLATE
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.wire import WireFormat

log = logging.getLogger(__name__)

_READ_SIZE = 65536


def client_ssl_context(ca: str | None = None, cert: str | None = None, key: str | None = None) -> ssl_module.SSLContext:
    """A TLS context trusting ``ca`` (PEM) and presenting ``cert``/``key`` (PEM) when given."""
    context = ssl_module.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


class CotStream:
    """One CoT stream to a server (XML, or TAK protocol 1 when asked for and offered).

    ``async for event in stream`` yields every event the server sends except protocol control
    (``t-x-takp-*`` negotiation and ``t-x-c-t`` pings); frames that fail to decode are skipped.
    ``bytes_received`` counts the bytes read from the socket (compressed, when the stream is).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        limits: Limits | None = None,
        *,
        protobuf: bool = False,
        compress: bool = False,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._limits = limits or Limits()
        self._conn = ClientConnection(self._limits, protobuf=protobuf, compression=DEFLATE if compress else None)
        self._ready: deque[CotEvent] = deque()
        self._eof = False
        self.rejected = 0
        self.bytes_received = 0

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        *,
        ssl: ssl_module.SSLContext | None = None,
        limits: Limits | None = None,
        wait_ready: bool = False,
        timeout: float = 10.0,
        protobuf: bool = False,
        compress: bool = False,
    ) -> _Connecting:
        """Open a stream: ``await CotStream.connect(...)`` or ``async with CotStream.connect(...) as s``.

        With ``wait_ready``, return only once the server announced its protocol offer, i.e. once
        the session is registered and everything routed to it will arrive. ``protobuf`` (and
        ``compress``, which implies it) also wait until the upgrade is settled.
        """
        ready = wait_ready or protobuf or compress
        return _Connecting(cls, host, port, ssl, limits, ready, timeout, protobuf, compress)

    @property
    def announced(self) -> bool:
        """True once the server's protocol announcement (``t-x-takp-v``) has been read."""
        return self._conn.announced

    @property
    def wire(self) -> WireFormat:
        """What the stream speaks now."""
        return self._conn.wire

    @property
    def compressed(self) -> bool:
        """Whether the stream is deflate-compressed both ways."""
        return self._conn.compressed

    async def send(self, event: bytes | CotEvent) -> None:
        """Write one event (raw XML bytes or a ``CotEvent``) and wait until it is buffered by the OS.

        During an upgrade the event waits until the server answered (the protocol forbids sending).
        """
        while self._conn.negotiation is Negotiation.REQUESTED:
            if self._eof:
                raise EOFError("stream closed during the protocol upgrade")
            await self._fill()
        self._writer.write(self._conn.send(event))
        await self._writer.drain()

    async def receive(self, timeout: float | None = None) -> CotEvent:
        """The next event; ``EOFError`` when the server closed the stream, ``TimeoutError`` on timeout."""
        async with asyncio.timeout(timeout):
            while not self._ready:
                if self._eof:
                    raise EOFError("stream closed by the server")
                await self._fill()
            return self._ready.popleft()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait for the server's protocol announcement and, if an upgrade was asked for, its outcome.

        Events read meanwhile stay queued.
        """
        async with asyncio.timeout(timeout):
            while not (self._conn.announced and self._conn.settled):
                if self._eof:
                    raise EOFError("stream closed before the server announced itself")
                await self._fill()

    def __aiter__(self) -> CotStream:
        return self

    async def __anext__(self) -> CotEvent:
        try:
            return await self.receive()
        except EOFError:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._writer.is_closing():
            return
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError, ssl_module.SSLError):
            pass

    async def __aenter__(self) -> CotStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _fill(self) -> None:
        try:
            chunk = await self._reader.read(_READ_SIZE)
        except (ConnectionError, ssl_module.SSLError):
            chunk = b""
        self.bytes_received += len(chunk)
        conn = self._conn
        conn.receive_data(chunk)
        while (ev := conn.next_event()) is not NEED_DATA:
            if isinstance(ev, EventReceived):
                self._ready.append(ev.event)
            elif isinstance(ev, EventRejected):
                self.rejected += 1
                log.debug("undecodable event skipped", extra={"reason": ev.reason})
            elif isinstance(ev, ConnectionClosed):
                self._eof = True
                break
        out = conn.data_to_send()
        if out:
            self._writer.write(out)
            await self._writer.drain()


class _Connecting:
    """What ``CotStream.connect`` returns: awaitable, or usable directly with ``async with``."""

    def __init__(
        self, cls: type[CotStream], host: str, port: int, ssl: ssl_module.SSLContext | None, limits: Limits | None,
        wait_ready: bool, timeout: float, protobuf: bool, compress: bool,
    ) -> None:
        self._args = (cls, host, port, ssl, limits, wait_ready, timeout)
        self._options = (protobuf, compress)
        self._stream: CotStream | None = None

    async def _open(self) -> CotStream:
        cls, host, port, ssl, limits, wait_ready, timeout = self._args
        protobuf, compress = self._options
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=ssl)
        stream = cls(reader, writer, limits, protobuf=protobuf, compress=compress)
        if wait_ready:
            try:
                await stream.wait_ready(timeout)
            except BaseException:
                await stream.close()
                raise
        return stream

    def __await__(self) -> Generator[Any, None, CotStream]:
        return self._open().__await__()

    async def __aenter__(self) -> CotStream:
        self._stream = await self._open()
        return self._stream

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            await self._stream.close()
