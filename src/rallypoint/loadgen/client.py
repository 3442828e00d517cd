"""One bench connection: an asyncio Protocol that sends stamped events and counts arrivals.

All connections of a worker process share one ``Tally``; the per-read work is a ``bytes.count``
(or a frame-header walk for protobuf), a ``bytes.find`` for stamps and a few integer additions.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from typing import cast

from rallypoint.protocol.compression import StreamCompressor, StreamDecompressor

from .counting import NeedleCounter, ProtoFrameCounter, XmlCounter, read_stamp
from .diagnosis import RIGHT_AFTER_CONNECT, NegotiationFailed, describe_failure
from .events import STAMP_MARK, XML_END, ClientIdentity, control_event
from .report import LatencySampler

logger = logging.getLogger(__name__)

WRITE_HIGH_WATER = 256 * 1024
_UID_ATTR = re.compile(rb"""uid=["']([^"']*)["']""")
_NEVER = 1 << 62
_COMPRESSION = b'<RallypointCompression method="deflate"/>'


class Tally:
    """Counters shared by one worker's connections, with a wake-up when a target is reached."""

    __slots__ = ("delivered", "disconnects", "errors", "reached", "sampler", "target")

    def __init__(self, sampler: LatencySampler) -> None:
        self.delivered = 0
        self.target = _NEVER
        self.errors = 0
        self.disconnects = 0
        self.sampler = sampler
        self.reached = asyncio.Event()

    def aim(self, target: int) -> None:
        """Wake ``reached`` once ``delivered`` gets to ``target`` (immediately if already there)."""
        self.target = target
        if self.delivered >= target:
            self.reached.set()
        else:
            self.reached.clear()

    def wake(self) -> None:
        """A connection was lost: whoever waits on ``reached`` re-evaluates its target."""
        self.reached.set()

    def reset(self) -> None:
        """Start of the measured window: zero every counter and stop aiming."""
        self.delivered = 0
        self.errors = 0
        self.disconnects = 0
        self.target = _NEVER
        self.reached.clear()
        self.sampler.clear()


class BenchConnection(asyncio.Protocol):
    """Sends what the worker hands it and counts what the server delivers."""

    def __init__(self, ident: ClientIdentity, proto: str, tally: Tally) -> None:
        self.ident = ident
        self.proto = proto
        self.tally = tally
        self.counting = True
        self.sent = 0
        # Deliveries of this run's own events, and events of anyone else (received, not counted).
        self.received = 0
        self.other = 0
        self.bytes_in = 0
        self.closed = False
        # Why the server ended this connection (None while open, or when we closed it).
        self.lost: str | None = None
        self.transport: asyncio.Transport | None = None
        self._closing = False
        counter = ProtoFrameCounter() if proto != "xml" else XmlCounter()
        self._feed = counter.feed
        self._own = NeedleCounter(ident.run_prefix.encode()).feed
        self._handshake: bytearray | None = bytearray() if proto != "xml" else None
        self._compress = proto == "protobuf-deflate"
        # Set once the server confirmed compression: every read is inflated, every write deflated.
        self._inflate: StreamDecompressor | None = None
        self._deflate: StreamCompressor | None = None
        self._asked = False
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        # A failure nobody awaits any more (the connect already timed out) is not worth a warning.
        self.ready.add_done_callback(_consume_exception)
        self._writable = asyncio.Event()
        self._writable.set()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self._handshake is None:
            self.ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._handshake is not None:
            self._negotiate(data)
            return
        if self._inflate is not None:
            data = self._inflate.decompress(data)
        self.bytes_in += len(data)
        events = self._feed(data)
        n = self._own(data)
        if not self.counting:
            return
        # Per read the two counts may straddle different reads; their totals agree.
        self.other += events - n
        self.received += n
        tally = self.tally
        tally.delivered += n
        if tally.delivered >= tally.target:
            tally.reached.set()
        # Latency from the first and last stamped event of each read: every event at fan-out
        # rates (one or two per read), a steady sample of a blast (hundreds per read).
        first = data.find(STAMP_MARK)
        if first < 0:
            return
        now = time.time_ns()
        sent_ns = read_stamp(data, first)
        if sent_ns is not None:
            tally.sampler.add((now - sent_ns) // 1000)
        if n > 1:
            last = data.rfind(STAMP_MARK)
            if last > first and (sent_ns := read_stamp(data, last)) is not None:
                tally.sampler.add((now - sent_ns) // 1000)

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._writable.set()
        if not self.ready.done():
            why = describe_failure(exc)
            self.ready.set_exception(NegotiationFailed(f"{why} during TAK protocol negotiation"))
        if not self._closing:
            self.lost = describe_failure(exc) + (RIGHT_AFTER_CONNECT if self.bytes_in == 0 else "")
            tally = self.tally
            tally.disconnects += 1
            if exc is not None:
                tally.errors += 1
            logger.debug("connection %s lost: %s", self.ident.callsign, self.lost)
            if self.counting:
                # A lost connection no longer counts: delivered and expected cover open ones only.
                tally.delivered -= self.received
                self.received = 0
            tally.wake()

    # -- sending --------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes unless the connection is gone."""
        if self.transport is not None and not self.closed:
            self.transport.write(self._deflate.compress(data) if self._deflate is not None else data)

    @property
    def paused(self) -> bool:
        """True while the transport buffer is above its high-water mark."""
        return not self._writable.is_set()

    async def writable(self) -> None:
        """Wait until the transport drains below its low-water mark (or closes)."""
        await self._writable.wait()

    def close(self) -> None:
        """Close on purpose (not counted as a disconnect)."""
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    # -- TAK protocol negotiation ---------------------------------------------------------

    def _negotiate(self, data: bytes) -> None:
        buf = self._handshake
        assert buf is not None
        buf += data
        if not self._asked:
            found = _complete_event(buf, b"t-x-takp-v")
            if found is None:
                return
            start, end = found
            match = _UID_ATTR.search(buf, start, end)
            server_uid = match.group(1).decode(errors="replace") if match else "protouid"
            inner = '<TakRequest version="1"/>' + (_COMPRESSION.decode() if self._compress else "")
            request = control_event(server_uid, "t-x-takp-q", inner, time.time_ns() // 1_000_000)
            assert self.transport is not None
            self.transport.write(request)
            del buf[:end]
            self._asked = True
        found = _complete_event(buf, b"t-x-takp-r")
        if found is None:
            return
        start, end = found
        response = bytes(buf[start:end])
        rest = bytes(buf[end:])
        self._handshake = None
        if self._compress and _COMPRESSION not in response:
            self.ready.set_exception(NegotiationFailed("server did not grant deflate compression"))
        elif b'status="true"' in response or b"status='true'" in response:
            if self._compress:
                # The server is trusted here: no bomb guard beyond a generous output cap.
                self._inflate = StreamDecompressor(max_ratio=2048, max_pending=64 * 1024 * 1024)
                self._deflate = StreamCompressor()
            self.ready.set_result(None)
            if rest:
                self.data_received(rest)
        else:
            self.ready.set_exception(NegotiationFailed("server answered TakResponse status=false"))


def _consume_exception(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


def _complete_event(buf: bytearray, cot_type: bytes) -> tuple[int, int] | None:
    """(start, end) of the first complete event of ``cot_type`` in ``buf``, ``end`` past ``</event>``."""
    at = buf.find(cot_type)
    if at < 0:
        return None
    end = buf.find(XML_END, at)
    if end < 0:
        return None
    start = buf.rfind(b"<event", 0, at)
    return max(start, 0), end + len(XML_END)


def client_ssl_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    """TLS client context trusting ``ca`` and presenting ``cert``/``key`` when given."""
    ctx = ssl.create_default_context(cafile=ca)
    # The chain is verified against the given CA; bench targets are often addressed by IP or
    # localhost, which a server certificate rarely names.
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


async def open_connection(
    conn: BenchConnection, host: str, port: int, ssl_ctx: ssl.SSLContext | None, timeout: float
) -> None:
    """Connect ``conn`` and, in protobuf mode, finish the TAK protocol negotiation."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        await loop.create_connection(lambda: conn, host, port, ssl=ssl_ctx)
        await conn.ready
