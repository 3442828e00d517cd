"""Play a simulated scenario onto the network, in real time or sped up, as the real sources would.

Each output carries one source's wire format (``fusion.emit``) in one of three ways:

* ``listen``: a TCP port any number of clients connect to and read from, like dump1090's port
  30003 (a server's ``sbs+tcp://``, ``nmea+tcp://``, ``ais+tcp://``, ``cot+tcp://`` feeds dial it);
  a client that stops reading is closed once ``MAX_CLIENT_BUFFER`` bytes wait for it.
* ``connect``: we dial the server (its feed URL has ``?listen=1``) and redial with backoff.
* ``udp``: one datagram per report to the server (``ais+udp://``, ``nmea+udp://``, ``cot+udp://``).

Playing at ``speedup`` X compresses time: a report measured ``t`` seconds into the scenario leaves
``t / X`` seconds after the start and carries that wall-clock time, and speeds are multiplied by X,
so what the server receives stays self-consistent (objects simply move X times faster).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from rallypoint.clock import Clock, ms_to_datetime
from rallypoint.fusion.emit import AisEmitter, RadarCotEmitter, SbsEmitter, nmea_sentences
from rallypoint.fusion.scenario_sources import SimReport, SourceKind
from rallypoint.model.track import Observation

log = logging.getLogger(__name__)

MAX_CLIENT_BUFFER = 1 << 20
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.2, 5.0


class OutputMode(enum.StrEnum):
    LISTEN = "listen"
    CONNECT = "connect"
    UDP = "udp"


DEFAULT_MODES = {SourceKind.ADSB: OutputMode.LISTEN, SourceKind.AIS: OutputMode.UDP,
                 SourceKind.GPS: OutputMode.LISTEN, SourceKind.RADAR: OutputMode.LISTEN}


@dataclass(frozen=True)
class OutputSpec:
    """Where one source's stream goes; ``unit`` picks the ground unit a GPS (NMEA) stream carries."""

    kind: SourceKind
    mode: OutputMode
    host: str
    port: int
    unit: str | None = None


def parse_output(kind: SourceKind, value: str, unit: str | None = None) -> OutputSpec:
    """``[listen:|connect:|udp:]HOST:PORT`` into an ``OutputSpec``; ``ValueError`` says what is wrong."""
    mode = DEFAULT_MODES[kind]
    rest = value
    prefix, sep, tail = value.partition(":")
    if sep and prefix in {m.value for m in OutputMode}:
        mode, rest = OutputMode(prefix), tail
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r}: expected [listen:|connect:|udp:]HOST:PORT with a port 0-65535")
    if mode is not OutputMode.LISTEN and int(port_text) == 0:
        raise ValueError(f"{value!r}: port 0 only makes sense for listen")
    return OutputSpec(kind, mode, host.strip("[]"), int(port_text), unit)


class _Sink:
    """One output's socket side; ``write`` never blocks the player."""

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.stats: Counter[str] = Counter()
        self.peer = asyncio.Event()  # set while someone receives what this output writes

    async def start(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class _ListenSink(_Sink):
    def __init__(self, spec: OutputSpec) -> None:
        super().__init__(spec)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = spec.port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.spec.host, self.spec.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["clients"] += 1
        self._writers.add(writer)
        self.peer.set()
        # We only send; reading until EOF notices the client leaving.
        with contextlib.suppress(OSError):
            while await reader.read(4096):
                pass
        self._forget(writer)

    def _forget(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        writer.close()
        if not self._writers:
            self.peer.clear()

    def write(self, data: bytes) -> None:
        if not self._writers:
            self.stats["unsent"] += 1
            return
        for writer in list(self._writers):
            if writer.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
                self.stats["slow_clients_closed"] += 1
                self._forget(writer)
                continue
            writer.write(data)
        self.stats["sent"] += 1

    async def close(self) -> None:
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class _ConnectSink(_Sink):
    def __init__(self, spec: OutputSpec, rng: random.Random) -> None:
        super().__init__(spec)
        self._writer: asyncio.StreamWriter | None = None
        self._rng = rng

    async def run(self) -> None:
        """Keep one connection to the server, redialling with doubling, jittered delays."""
        delay = RECONNECT_MIN_S
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.spec.host, self.spec.port)
            except OSError as exc:
                self.stats["connect_failures"] += 1
                log.info("simulate: %s:%d not reachable (%s), retrying", self.spec.host, self.spec.port, exc)
                await asyncio.sleep(delay / 2 + self._rng.uniform(0, delay / 2))
                delay = min(RECONNECT_MAX_S, delay * 2)
                continue
            delay = RECONNECT_MIN_S
            self.stats["connections"] += 1
            self._writer = writer
            self.peer.set()
            with contextlib.suppress(OSError):
                while await reader.read(4096):
                    pass
            self.peer.clear()
            self._writer = None
            writer.close()

    def write(self, data: bytes) -> None:
        if self._writer is None or self._writer.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
            self.stats["unsent"] += 1
            return
        self._writer.write(data)
        self.stats["sent"] += 1

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _UdpSink(_Sink):
    def __init__(self, spec: OutputSpec) -> None:
        super().__init__(spec)
        self._transport: asyncio.DatagramTransport | None = None
        self.peer.set()  # datagrams need no peer

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(self.spec.host, self.spec.port))

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.sendto(data)
        self.stats["sent"] += 1

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@dataclass(frozen=True)
class Played:
    """What a playback did: the wall-clock time of scenario second 0 and each output's counters."""

    start: datetime
    outputs: dict[str, dict[str, int]]


class Player:
    """The outputs of one playback: open them, wait for the server to connect, then play reports."""

    def __init__(self, outputs: Sequence[OutputSpec], clock: Clock, rng: random.Random | None = None) -> None:
        rng = rng or random.Random()
        self._clock = clock
        self._sinks: list[_Sink] = []
        for spec in outputs:
            match spec.mode:
                case OutputMode.LISTEN:
                    self._sinks.append(_ListenSink(spec))
                case OutputMode.CONNECT:
                    self._sinks.append(_ConnectSink(spec, rng))
                case OutputMode.UDP:
                    self._sinks.append(_UdpSink(spec))
        self._sbs, self._ais, self._radar = SbsEmitter(), AisEmitter(), RadarCotEmitter()
        self.started = asyncio.Event()  # set when sending begins; ``start`` is then scenario second 0
        self.start: datetime | None = None

    async def open(self) -> None:
        """Bind the listening ports and open the UDP sockets (connecting outputs dial in ``play``)."""
        for sink in self._sinks:
            await sink.start()

    def listening_ports(self) -> list[tuple[OutputSpec, int]]:
        """The port each listening output is bound to (useful with port 0)."""
        return [(s.spec, s.port) for s in self._sinks if isinstance(s, _ListenSink)]

    async def wait_for_peers(self, timeout_s: float) -> bool:
        """Wait until every TCP output has someone to send to; False when ``timeout_s`` ran out first."""
        try:
            async with asyncio.timeout(timeout_s):
                for sink in self._sinks:
                    await sink.peer.wait()
        except TimeoutError:
            return False
        return True

    async def play(self, reports: Sequence[SimReport], *, speedup: float = 1.0, wait_s: float = 30.0) -> Played:
        """Wait up to ``wait_s`` for every TCP output to have a peer, then send each report at its time.

        Scenario second 0 is the moment sending starts (``Played.start``); a report measured at ``t``
        carries ``start + t / speedup``.
        """
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            dialers = [tg.create_task(s.run()) for s in self._sinks if isinstance(s, _ConnectSink)]
            if not await self.wait_for_peers(wait_s):
                log.warning("simulate: starting although not every output has a peer after %.0f s", wait_s)
            t0 = loop.time()
            start = self.start = ms_to_datetime(self._clock.now_ms())
            self.started.set()
            for report in reports:
                delay = t0 + report.deliver_s / speedup - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.send(report, start, speedup)
            for task in dialers:
                task.cancel()
        for sink in self._sinks:
            await sink.close()
        counts = {f"{s.spec.kind}:{s.spec.mode}:{s.spec.host}:{s.spec.port}": dict(s.stats) for s in self._sinks}
        return Played(start, counts)

    def send(self, report: SimReport, start: datetime, speedup: float = 1.0) -> None:
        """Encode ``report`` once for its format and write it to every output of that source."""
        sinks = [s for s in self._sinks if s.spec.kind is report.source_kind
                 and (s.spec.unit is None or s.spec.unit == report.truth_id)]
        if not sinks:
            return
        obs = _rescaled(report, start, speedup)
        match report.source_kind:
            case SourceKind.ADSB:
                data = self._sbs.emit(obs)
            case SourceKind.AIS:
                data = self._ais.emit(obs)
            case SourceKind.GPS:
                data = nmea_sentences(obs)
            case SourceKind.RADAR:
                data = self._radar.emit(obs)
        for sink in sinks:
            sink.write(data)


def _rescaled(report: SimReport, start: datetime, speedup: float) -> Observation:
    obs = report.observation
    return msgspec.structs.replace(
        obs,
        source_time=start + timedelta(seconds=report.measured_s / speedup),
        received_at=start + timedelta(seconds=report.deliver_s / speedup),
        speed_mps=None if obs.speed_mps is None else obs.speed_mps * speedup,
        climb_mps=None if obs.climb_mps is None else obs.climb_mps * speedup,
    )
