"""TCP feeds: we dial the source (SBS on 30003, APRS-IS, AIS/NMEA servers, another CoT server), or
the source dials us (``?listen=1``).

The client reconnects forever with exponential backoff and jitter; a connection that stays silent
for ``idle_timeout_s`` is taken as dead and replaced. When a connection ends mid-line, the decoder
is told the line is over (``end_of_stream``) so the half line is counted as a reject instead of
being glued to the first line of the next connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from rallypoint.clock import Clock
from rallypoint.connectors.base import StreamDecoder
from rallypoint.connectors.runners.base import Backoff, RunnerCore
from rallypoint.services.feed_types import FeedStatistics, ObservationSink

log = logging.getLogger(__name__)

READ_BYTES = 64 * 1024
MAX_SOURCES = 32

DecoderFactory = Callable[[], StreamDecoder]


class _StreamRunner:
    """Reading one connection into a decoder; shared by the client and the server."""

    def __init__(self, name: str, decoder_factory: DecoderFactory, clock: Clock, sink: ObservationSink, *,
                 end_of_stream: bytes | None = b"\n", idle_timeout_s: float | None = None,
                 buffer_items: int | None = None) -> None:
        self.core = RunnerCore(name, clock, sink) if buffer_items is None else RunnerCore(
            name, clock, sink, buffer_items=buffer_items)
        self._factory = decoder_factory
        self._end = end_of_stream
        self._idle = idle_timeout_s

    def new_decoder(self) -> StreamDecoder:
        decoder = self._factory()
        self.core.attach(decoder.rejects)
        return decoder

    async def read_connection(self, reader: asyncio.StreamReader, decoder: StreamDecoder) -> bool:
        """Read until the peer closes or goes silent; True when any data arrived."""
        core = self.core
        got_data = False
        try:
            while True:
                await core.wait_running()
                async with asyncio.timeout(self._idle):
                    data = await reader.read(READ_BYTES)
                if not data:
                    core.failed("connection closed by the source")
                    break
                got_data = True
                core.received(len(data), decoder.receive(data, core.now()))
        except TimeoutError:
            core.failed(f"no data for {self._idle:g} s")
        except OSError as exc:
            core.failed(exc)
        finally:
            if self._end is not None:
                core.received(0, decoder.receive(self._end, core.now()))
        return got_data

    def pause(self) -> None:
        """Stop reading (the source's data waits in the kernel, then in the source)."""
        self.core.pause()

    def resume(self) -> None:
        """Read again."""
        self.core.resume()

    def statistics(self) -> FeedStatistics:
        """The feed's counters now."""
        return self.core.statistics()


class TcpClientRunner(_StreamRunner):
    """Dial ``host:port``, send ``hello`` (an APRS-IS login), decode what arrives; reconnect on loss."""

    def __init__(self, name: str, host: str, port: int, decoder_factory: DecoderFactory, clock: Clock,
                 sink: ObservationSink, rng: random.Random, *, hello: bytes = b"",
                 end_of_stream: bytes | None = b"\n", backoff_initial_s: float = 1.0, backoff_max_s: float = 60.0,
                 connect_timeout_s: float = 10.0, idle_timeout_s: float | None = 300.0,
                 buffer_items: int | None = None) -> None:
        super().__init__(name, decoder_factory, clock, sink, end_of_stream=end_of_stream,
                         idle_timeout_s=idle_timeout_s, buffer_items=buffer_items)
        self._host = host
        self._port = port
        self._hello = hello
        self._backoff = Backoff(rng, initial_s=backoff_initial_s, maximum_s=backoff_max_s)
        self._connect_timeout = connect_timeout_s

    async def run(self) -> None:
        """Carry the feed until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.core.drain(), name=f"feed-{self.core.name}-drain")
            await self._connect_forever()

    async def _connect_forever(self) -> None:
        core = self.core
        # One decoder for the life of the feed: what it learnt (AIS names, CPR halves) survives reconnects.
        decoder = self.new_decoder()
        connected_before = False
        while True:
            await core.wait_running()
            try:
                async with asyncio.timeout(self._connect_timeout):
                    reader, writer = await asyncio.open_connection(self._host, self._port)
            except (OSError, TimeoutError) as exc:
                core.failed(exc if not isinstance(exc, TimeoutError) else f"connect timed out ({self._host})")
                await asyncio.sleep(self._backoff.next_delay())
                continue
            if connected_before:
                core.reconnects += 1
            connected_before = True
            core.connections += 1
            log.info("feed connected", extra={"feed": core.name, "peer": f"{self._host}:{self._port}"})
            try:
                if self._hello:
                    writer.write(self._hello)
                    await writer.drain()
                if await self.read_connection(reader, decoder):
                    self._backoff.reset()
            except OSError as exc:
                core.failed(exc)
            finally:
                core.connections -= 1
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            log.info("feed disconnected", extra={"feed": core.name, "reason": core.last_error})
            await asyncio.sleep(self._backoff.next_delay())


class TcpServerRunner(_StreamRunner):
    """Listen on ``host:port`` for sources that connect to us; each gets its own decoder."""

    def __init__(self, name: str, host: str, port: int, decoder_factory: DecoderFactory, clock: Clock,
                 sink: ObservationSink, *, end_of_stream: bytes | None = b"\n",
                 idle_timeout_s: float | None = None, max_sources: int = MAX_SOURCES,
                 buffer_items: int | None = None) -> None:
        super().__init__(name, decoder_factory, clock, sink, end_of_stream=end_of_stream,
                         idle_timeout_s=idle_timeout_s, buffer_items=buffer_items)
        self._host = host
        self._port = port
        self._max_sources = max_sources
        self._writers: set[asyncio.StreamWriter] = set()
        self._accepted = 0
        self.bound = asyncio.Event()
        self.port = 0

    async def run(self) -> None:
        """Listen until cancelled; then close every source connection."""
        server = await asyncio.start_server(self._serve, self._host, self._port)
        self.port = int(server.sockets[0].getsockname()[1])
        self.bound.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.core.drain(), name=f"feed-{self.core.name}-drain")
                await server.serve_forever()
        finally:
            server.close()
            for writer in list(self._writers):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        core = self.core
        if len(self._writers) >= self._max_sources:
            core.rejects.add("too_many_sources")
            writer.close()
            return
        self._writers.add(writer)
        core.connections += 1
        self._accepted += 1
        if self._accepted > 1:
            core.reconnects += 1
        decoder = self.new_decoder()
        try:
            await self.read_connection(reader, decoder)
        finally:
            core.detach(decoder.rejects)
            core.connections -= 1
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
