"""A userspace impaired link: an asyncio TCP proxy that delays every chunk and drops connections.

Stands in for kernel ``tc netem`` where the qdisc is unavailable. Each chunk read from one side is
written to the other ``delay_s`` later, in order per direction. Loss cannot be applied to single
packets of a TLS stream (a missing byte just breaks the session), so it is emulated at the
connection level: while impairment is on, every ``tick_s`` an outage starts with probability
``outage_p``; it aborts every proxied connection (RST both ways) and refuses new ones for a random
``outage_s`` window. With the defaults the link is unusable about 30% of the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class ImpairCounters:
    """What the proxy did; read by tests to prove the impairment was really applied."""

    connections: int = 0
    refused: int = 0
    resets: int = 0
    outages: int = 0
    down_s: float = 0.0
    chunks: int = 0
    bytes: int = 0
    min_delay_s: float | None = None


class _Conn:
    """One proxied connection: two delayed pumps, torn down together."""

    def __init__(self, link: ImpairedLink, client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.link = link
        self.writers = (client[1], upstream[1])
        self.tasks = [
            asyncio.ensure_future(self._pump(client[0], upstream[1])),
            asyncio.ensure_future(self._pump(upstream[0], client[1])),
        ]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, chunk = item
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(chunk)
                await writer.drain()
                self.link.note_delivered(loop.time() - (due - self.link.delay_s), len(chunk))
            if writer.can_write_eof():
                writer.write_eof()

        sender = asyncio.ensure_future(deliver())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((loop.time() + self.link.delay_s, chunk))
            queue.put_nowait(None)
            await sender
        except (ConnectionError, OSError):
            self.abort()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await sender

    def abort(self) -> None:
        """Reset both sides at once (RST, no FIN), as a lost link looks to both servers."""
        for writer in self.writers:
            writer.transport.abort()

    async def finished(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in self.writers:
            writer.close()

    def cancel(self) -> None:
        self.abort()
        for task in self.tasks:
            task.cancel()


class ImpairedLink:
    """A proxy on ``127.0.0.1`` (ephemeral port) to ``target_host:target_port`` that delays and flaps.

    ``start()`` returns the port to dial; delay applies at once, outages only between
    ``impair_on()`` and ``impair_off()`` so the test chooses when the link is lossy.
    """

    def __init__(self, target_host: str, target_port: int, *, delay_s: float = 0.5, outage_p: float = 0.3,
                 outage_s: tuple[float, float] = (0.5, 2.0), tick_s: float = 1.0, seed: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.delay_s, self.outage_p, self.outage_s, self.tick_s = delay_s, outage_p, outage_s, tick_s
        self.counters = ImpairCounters()
        self._rng = random.Random(seed)
        self._down = False
        self._conns: set[_Conn] = set()
        self._server: asyncio.Server | None = None
        self._chaos: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on an ephemeral loopback port; returns it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def note_delivered(self, delay: float, size: int) -> None:
        """Record one delivered chunk and the delay it actually had."""
        c = self.counters
        c.chunks += 1
        c.bytes += size
        c.min_delay_s = delay if c.min_delay_s is None else min(c.min_delay_s, delay)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            if self._down:
                self.counters.refused += 1
                writer.transport.abort()
                return
            try:
                upstream = await asyncio.open_connection(*self.target)
            except OSError:
                writer.transport.abort()
                return
            self.counters.connections += 1
            conn = _Conn(self, (reader, writer), upstream)
            self._conns.add(conn)
            try:
                await conn.finished()
            finally:
                self._conns.discard(conn)
        finally:
            self._handlers.discard(task)

    def impair_on(self) -> None:
        """Start random outages (about ``outage_p`` per tick)."""
        if self._chaos is None:
            self._chaos = asyncio.ensure_future(self._flap())

    async def impair_off(self) -> None:
        """Stop outages and leave the link up (delay still applies)."""
        if self._chaos is not None:
            self._chaos.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._chaos
            self._chaos = None
        self._down = False

    async def _flap(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick_s)
            if self._rng.random() >= self.outage_p:
                continue
            window = self._rng.uniform(*self.outage_s)
            self._down = True
            self.counters.outages += 1
            for conn in list(self._conns):
                conn.abort()
                self.counters.resets += 1
            log.info("impaired link down", extra={"window_s": window})
            started = loop.time()
            try:
                await asyncio.sleep(window)
            finally:
                self.counters.down_s += loop.time() - started
                self._down = False

    async def close(self) -> None:
        """Stop listening and tear down every proxied connection."""
        await self.impair_off()
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.cancel()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
