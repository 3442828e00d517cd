"""One real client connection per simulated unit: plain TCP, TLS with a client certificate, or TAK protobuf.

Each unit's :class:`~rallypoint.client.stream.CotStream` is opened and waits for the server's
protocol announcement (the session is registered then; with protobuf, the upgrade is settled), so
the server under test sees the units exactly as it sees TAK clients. What the server sends a unit
is read and dropped by one drain task per unit, so no unit ever becomes a slow receiver.

Position reports go through a small queue per unit with its own writer task: a connection the
server reads slowly holds back only its own unit's reports, never the schedule of the others.
A unit whose queue is full loses the report (counted in ``backlog_dropped``), as a radio would.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from rallypoint.client.stream import CotStream, client_ssl_context

log = logging.getLogger(__name__)

# Connections opened at once: enough to connect 2,000 units in seconds without a SYN flood.
CONNECT_CONCURRENCY = 64
# Reports waiting per unit while its connection is slow (at 1 Hz: a minute behind).
QUEUE_REPORTS = 64
# Called with the monotonic time a report was scheduled for, just as it is written to the socket.
OnWrite = Callable[[float | None], None]


class TargetError(ValueError):
    """The ``--server`` URL or TLS options do not make a usable target (the message says which)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the units connect and how."""

    host: str
    port: int
    ssl: ssl.SSLContext | None = None
    protobuf: bool = False
    connect_timeout_s: float = 30.0


def parse_target(url: str, *, ca: str | None = None, cert: str | None = None, key: str | None = None,
                 protocol: str = "xml") -> Target:
    """``tcp://HOST:PORT`` (plain) or ``tls://HOST:PORT`` (``ca``, and ``cert``/``key`` for a client certificate)."""
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    if parts.scheme not in ("tcp", "tls"):
        raise TargetError(f"--server {url!r}: use tcp://HOST:PORT or tls://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 0 < port < 65536:
        raise TargetError(f"--server {url!r}: give a host and a port within 1..65535")
    if protocol not in ("xml", "protobuf"):
        raise TargetError(f"--protocol {protocol!r}: xml or protobuf")
    if bool(cert) != bool(key):
        raise TargetError("--cert and --key go together")
    context = None
    if parts.scheme == "tls":
        try:
            context = client_ssl_context(ca, cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise TargetError(f"cannot load the TLS files: {exc}") from None
    elif cert or ca:
        raise TargetError("--ca, --cert and --key need a tls:// server")
    return Target(parts.hostname, port, context, protocol == "protobuf")


class UnitLinks:
    """The open streams of every unit, their drain tasks and send failures."""

    def __init__(self, target: Target, on_write: OnWrite | None = None) -> None:
        self._target = target
        self._on_write = on_write
        self._streams: dict[str, CotStream] = {}
        self._queues: dict[str, asyncio.Queue[tuple[bytes, float | None]]] = {}
        self._drains: list[asyncio.Task[None]] = []
        self.opened = 0
        self.received = 0
        self.written = 0
        self.send_errors = 0
        self.backlog_dropped = 0
        self.lost: set[str] = set()

    @property
    def connected(self) -> int:
        """Units whose connection is open."""
        return self.opened - len(self.lost)

    async def open(self, unit_ids: list[str]) -> None:
        """Connect every unit (``OSError``/``TimeoutError`` if one cannot: the run cannot be what was asked)."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(unit_id: str) -> None:
            async with gate:
                t = self._target
                stream = await CotStream.connect(t.host, t.port, ssl=t.ssl, wait_ready=True,
                                                 timeout=t.connect_timeout_s, protobuf=t.protobuf)
            self._streams[unit_id] = stream
            self.opened += 1
            queue: asyncio.Queue[tuple[bytes, float | None]] = asyncio.Queue(QUEUE_REPORTS)
            self._queues[unit_id] = queue
            self._drains.append(asyncio.create_task(self._drain(unit_id, stream), name=f"drain {unit_id}"))
            self._drains.append(asyncio.create_task(self._write(unit_id, queue), name=f"write {unit_id}"))

        try:
            async with asyncio.TaskGroup() as group:
                for unit_id in unit_ids:
                    group.create_task(one(unit_id))
        except* (OSError, TimeoutError, EOFError) as failed:
            await self.close()
            first = failed.exceptions[0]
            raise ConnectionError(f"cannot connect every unit to {self._target.host}:{self._target.port}: "
                                  f"{type(first).__name__}: {first}") from None

    def queue(self, unit_id: str, data: bytes, scheduled: float | None) -> bool:
        """Hand one report to ``unit_id``'s writer; False (counted) when its backlog is full or it is gone."""
        queue = self._queues.get(unit_id)
        if queue is None or unit_id in self.lost:
            self.send_errors += 1
            return False
        try:
            queue.put_nowait((data, scheduled))
        except asyncio.QueueFull:
            self.backlog_dropped += 1
            return False
        return True

    async def flush(self, timeout: float) -> None:
        """Wait (up to ``timeout``) until every queued report has been written."""
        try:
            async with asyncio.timeout(timeout):
                for queue in self._queues.values():
                    await queue.join()
        except TimeoutError:
            log.warning("exercise reports still queued at the end", extra={
                "queued": sum(q.qsize() for q in self._queues.values())})

    async def _write(self, unit_id: str, queue: asyncio.Queue[tuple[bytes, float | None]]) -> None:
        while True:
            data, scheduled = await queue.get()
            try:
                if self._on_write is not None:
                    self._on_write(scheduled)
                if await self.send(unit_id, data):
                    self.written += 1
            finally:
                queue.task_done()

    async def send(self, unit_id: str, data: bytes) -> bool:
        """Send one event on ``unit_id``'s connection; False (counted) when the connection is gone."""
        stream = self._streams.get(unit_id)
        if stream is None or unit_id in self.lost:
            self.send_errors += 1
            return False
        try:
            await stream.send(data)
        except (ConnectionError, OSError, EOFError, ssl.SSLError) as exc:
            self._lose(unit_id, exc)
            self.send_errors += 1
            return False
        return True

    async def _drain(self, unit_id: str, stream: CotStream) -> None:
        try:
            async for _ in stream:
                self.received += 1
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            self._lose(unit_id, exc)
            return
        if unit_id not in self.lost and unit_id in self._streams:
            self._lose(unit_id, EOFError("closed by the server"))

    def _lose(self, unit_id: str, why: BaseException) -> None:
        if unit_id not in self.lost:
            self.lost.add(unit_id)
            log.warning("exercise unit connection lost", extra={"unit": unit_id, "reason": str(why)})

    async def close(self) -> None:
        """Close every connection and stop the drains."""
        streams, self._streams = self._streams, {}
        self._queues = {}
        for task in self._drains:
            task.cancel()
        await asyncio.gather(*(s.close() for s in streams.values()), return_exceptions=True)
        await asyncio.gather(*self._drains, return_exceptions=True)
        self._drains = []
