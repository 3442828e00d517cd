"""``CotStream``: send and receive Cursor-on-Target over TCP or TLS with asyncio (XML framing)."""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections import deque
from collections.abc import Generator
from types import TracebackType
from typing import Any

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol.framing import XmlStreamFramer
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import XmlDecoder, encode_event

log = logging.getLogger(__name__)

ANNOUNCE = "t-x-takp-v"
_CONTROL = ("t-x-takp-", "t-x-c-t")
_READ_SIZE = 65536


def client_ssl_context(ca: str | None = None, cert: str | None = None, key: str | None = None) -> ssl_module.SSLContext:
    """A TLS context trusting ``ca`` (PEM) and presenting ``cert``/``key`` (PEM) when given."""
    context = ssl_module.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


class CotStream:
    """One CoT stream to a server, speaking XML.

    ``async for event in stream`` yields every event the server sends except protocol control
    (``t-x-takp-*`` negotiation and ``t-x-c-t`` pings); frames that fail to decode are skipped.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits | None = None
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._limits = limits or Limits()
        self._framer = XmlStreamFramer(self._limits)
        self._decoder = XmlDecoder(self._limits)
        self._ready: deque[CotEvent] = deque()
        self._announced = False
        self._eof = False
        self.rejected = 0

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
    ) -> _Connecting:
        """Open a stream: ``await CotStream.connect(...)`` or ``async with CotStream.connect(...) as s``.

        With ``wait_ready``, return only once the server announced its protocol offer, i.e. once
        the session is registered and everything routed to it will arrive.
        """
        return _Connecting(cls, host, port, ssl, limits, wait_ready, timeout)

    @property
    def announced(self) -> bool:
        """True once the server's protocol announcement (``t-x-takp-v``) has been read."""
        return self._announced

    async def send(self, event: bytes | CotEvent) -> None:
        """Write one event (raw XML bytes or a ``CotEvent``) and wait until it is buffered by the OS."""
        data = event if isinstance(event, bytes) else encode_event(event)
        self._writer.write(data)
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
        """Wait for the server's protocol announcement (events read meanwhile stay queued)."""
        async with asyncio.timeout(timeout):
            while not self._announced:
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
        if not chunk:
            self._eof = True
            return
        self._framer.feed(chunk)
        while True:
            try:
                frame = self._framer.next_frame()
            except RemoteProtocolError as exc:
                if exc.fatal:
                    raise
                self.rejected += 1
                continue
            if frame is None:
                return
            try:
                event = self._decoder.decode(frame)
            except RemoteProtocolError as exc:
                if exc.fatal:
                    raise
                self.rejected += 1
                log.debug("undecodable event skipped", extra={"reason": exc.reason})
                continue
            if event.type == ANNOUNCE:
                self._announced = True
            if event.type.startswith(_CONTROL):
                continue
            self._ready.append(event)


class _Connecting:
    """What ``CotStream.connect`` returns: awaitable, or usable directly with ``async with``."""

    def __init__(
        self, cls: type[CotStream], host: str, port: int, ssl: ssl_module.SSLContext | None, limits: Limits | None,
        wait_ready: bool, timeout: float,
    ) -> None:
        self._args = (cls, host, port, ssl, limits, wait_ready, timeout)
        self._stream: CotStream | None = None

    async def _open(self) -> CotStream:
        cls, host, port, ssl, limits, wait_ready, timeout = self._args
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=ssl)
        stream = cls(reader, writer, limits)
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
