"""TCP runners against fake feed servers on loopback that drop and come back."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime

import pytest

from rallypoint.clock import ManualClock
from rallypoint.connectors.feeds import aprs_login
from rallypoint.connectors.runners.base import Backoff, ObservationBuffer
from rallypoint.connectors.runners.stream import TcpClientRunner, TcpServerRunner
from rallypoint.connectors.spec import parse_feed_url
from rallypoint.model.track import Observation
from tests.support.poll import wait_until
from tests.unit.connectors.runner_support import Collected, LineDecoder, running


class FakeSource:
    """A TCP feed server: each connection gets the next script of bytes and stays open until the
    server stops (a source that goes away drops its clients)."""

    def __init__(self, scripts: list[bytes]) -> None:
        self.scripts = scripts
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        script = self.scripts.pop(0) if self.scripts else b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                self.received.append(await reader.readline())
        writer.write(script)
        await writer.drain()


async def test_client_reconnects_after_the_source_drops_and_restarts() -> None:
    source = FakeSource([b"a,1,2\nb,3,4\nnot a line\nc,5,", b"c,5,6\n"])
    await source.start()
    sink = Collected()
    runner = TcpClientRunner(
        "t",
        "127.0.0.1",
        source.port,
        LineDecoder,
        ManualClock(),
        sink,
        random.Random(1),
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
    )
    async with running(runner):
        await wait_until(lambda: sink.ids() == ["a", "b"], "first connection decoded")
        # The source goes away for a while (the runner keeps retrying), then comes back on its port.
        port = source.port
        await source.stop()
        await wait_until(lambda: not runner.statistics().connected, "drop noticed")
        await source.start(port)
        await wait_until(lambda: sink.ids() == ["a", "b", "c"], "second connection decoded")
        stats = runner.statistics()
    assert stats.reconnects >= 1
    assert stats.observations == 3
    # The bad line, and the half line the first connection ended with, are counted, not fatal.
    assert stats.rejects == {"malformed": 2}
    assert stats.bytes == len(b"a,1,2\nb,3,4\nnot a line\nc,5,c,5,6\n")
    assert stats.last_error is not None


async def test_client_sends_the_aprs_login_first() -> None:
    source = FakeSource([b"k,1,1\n"])
    await source.start()
    spec = parse_feed_url(f"aprs+tcp://127.0.0.1:{source.port}?login=N0CALL&filter=r/51/0/50")
    sink = Collected()
    runner = TcpClientRunner(
        spec.name,
        spec.host,
        spec.port,
        LineDecoder,
        ManualClock(),
        sink,
        random.Random(1),
        hello=aprs_login(spec),
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
    )
    async with running(runner):
        await wait_until(lambda: sink.ids() == ["k"], "observation after login")
        await source.stop()
    assert source.received[0].startswith(b"user N0CALL pass -1 vers Rallypoint ")
    assert source.received[0].endswith(b" filter r/51/0/50\r\n")


async def test_paused_client_reads_nothing_until_resumed() -> None:
    release = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        writer.write(b"a,1,1\n")
        await release.wait()
        writer.write(b"b,2,2\n")
        await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    sink = Collected()
    runner = TcpClientRunner(
        "t",
        "127.0.0.1",
        server.sockets[0].getsockname()[1],
        LineDecoder,
        ManualClock(),
        sink,
        random.Random(1),
        backoff_initial_s=0.01,
    )
    async with running(runner):
        await wait_until(lambda: sink.ids() == ["a"], "first line")
        runner.pause()
        assert runner.statistics().paused
        release.set()
        await wait_until(lambda: runner.statistics().paused, "still paused")
        assert sink.ids() == ["a"] or sink.ids() == ["a", "b"]  # a read already waiting may complete
        runner.resume()
        await wait_until(lambda: sink.ids() == ["a", "b"], "second line after resume")
    for writer in writers:
        writer.close()
    server.close()


async def test_server_runner_takes_several_sources_and_survives_their_garbage() -> None:
    sink = Collected()
    runner = TcpServerRunner("in", "127.0.0.1", 0, LineDecoder, ManualClock(), sink)
    async with running(runner):
        await runner.bound.wait()
        _r1, w1 = await asyncio.open_connection("127.0.0.1", runner.port)
        _r2, w2 = await asyncio.open_connection("127.0.0.1", runner.port)
        # Interleaved halves: each source has its own decoder, so lines do not mix.
        w1.write(b"x,1,")
        await w1.drain()
        w2.write(b"y,2,2\n")
        await w2.drain()
        w1.write(b"1\ngarbage\n")
        await w1.drain()
        await wait_until(lambda: sorted(sink.ids()) == ["x", "y"], "both sources decoded")
        w1.close()
        await wait_until(lambda: runner.statistics().rejects == {"malformed": 1}, "reject kept after close")
        _r3, w3 = await asyncio.open_connection("127.0.0.1", runner.port)
        w3.write(b"z,3,3\n")
        await w3.drain()
        await wait_until(lambda: "z" in sink.ids(), "a later source")
        stats = runner.statistics()
        w2.close()
        w3.close()
    assert stats.connected and stats.reconnects == 2 and stats.observations == 3


def test_backoff_doubles_with_jitter_and_resets() -> None:
    backoff = Backoff(random.Random(42), initial_s=1.0, maximum_s=8.0)
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, step in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert step / 2 <= delay <= step
    assert delays[0] == Backoff(random.Random(42), initial_s=1.0, maximum_s=8.0).next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 1.0
    with pytest.raises(ValueError):
        Backoff(random.Random(1), initial_s=0.0)


async def test_buffer_drops_the_oldest_beyond_its_bound() -> None:
    buffer = ObservationBuffer(max_items=3)
    now = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    obs = [Observation(source="s", received_at=now, source_time=None, lat=float(i), lon=0.0) for i in range(5)]
    buffer.put(obs)
    assert buffer.dropped == 2 and len(buffer) == 3
    assert [o.lat for o in await buffer.take()] == [2.0, 3.0, 4.0]
