"""Playing a scenario onto loopback sockets: every report arrives on its own wire, at compressed time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from lxml import etree

from rallypoint.clock import ManualClock, ms_to_datetime
from rallypoint.connectors.ais import AisDecoder
from rallypoint.connectors.emit_play import OutputMode, OutputSpec, Player, parse_output
from rallypoint.connectors.nmea import NmeaDecoder
from rallypoint.fusion.scenario import SCENARIOS, build_scenario
from rallypoint.fusion.scenario_sources import SourceKind, simulate
from tests.support.poll import wait_until

SPEEDUP = 30.0


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)


async def _read_all(reader: asyncio.StreamReader, into: list[bytes]) -> None:
    while data := await reader.read(65536):
        into.append(data)


async def test_every_report_reaches_its_output_in_its_format() -> None:
    scenario = build_scenario(SCENARIOS["small"], 3, duration_s=6.0)
    reports = simulate(scenario)
    by_kind = {kind: [r for r in reports if r.source_kind is kind] for kind in SourceKind}

    cot_chunks: list[bytes] = []
    cot_done = asyncio.Event()

    async def on_cot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_all(reader, cot_chunks)
        writer.close()
        cot_done.set()

    cot_server = await asyncio.start_server(on_cot, "127.0.0.1", 0)
    cot_port = cot_server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    udp, ais_in = await loop.create_datagram_endpoint(_Datagrams, local_addr=("127.0.0.1", 0))
    ais_port = udp.get_extra_info("sockname")[1]

    clock = ManualClock(1_767_000_000_000)
    player = Player([
        OutputSpec(SourceKind.ADSB, OutputMode.LISTEN, "127.0.0.1", 0),
        OutputSpec(SourceKind.AIS, OutputMode.UDP, "127.0.0.1", ais_port),
        OutputSpec(SourceKind.GPS, OutputMode.LISTEN, "127.0.0.1", 0, unit="ground-1"),
        OutputSpec(SourceKind.RADAR, OutputMode.CONNECT, "127.0.0.1", cot_port),
    ], clock)
    await player.open()
    ports = {spec.kind: port for spec, port in player.listening_ports()}
    sbs_chunks: list[bytes] = []
    gps_chunks: list[bytes] = []
    readers, writers = [], []  # the writers stay referenced: a collected writer closes its connection
    for kind, into in ((SourceKind.ADSB, sbs_chunks), (SourceKind.GPS, gps_chunks)):
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[kind])
        writers.append(writer)
        readers.append(asyncio.create_task(_read_all(reader, into)))

    played = await player.play(reports, speedup=SPEEDUP, wait_s=10.0)
    await asyncio.gather(*readers)
    for writer in writers:
        writer.close()
    await asyncio.wait_for(cot_done.wait(), 10.0)
    await wait_until(lambda: len(ais_in.received) == len(by_kind[SourceKind.AIS]), "every AIS datagram")
    udp.close()
    cot_server.close()

    start = ms_to_datetime(clock.now_ms())
    assert played.start == start
    # ADS-B: one MSG,3 per report.
    sbs_text = b"".join(sbs_chunks).decode()
    assert sbs_text.count("MSG,3,") == len(by_kind[SourceKind.ADSB])
    # AIS: every datagram decodes (static data included), one vessel observation per report.
    ais = AisDecoder("ais")
    decoded = [o for d in ais_in.received for o in ais.receive(d, start + timedelta(seconds=1))]
    assert ais.rejects.total == 0 and len(decoded) == len(by_kind[SourceKind.AIS])
    # GPS: only ground-1's fixes, each a RMC and a GGA with valid checksums.
    gps = NmeaDecoder("gps")
    fixes = gps.receive(b"".join(gps_chunks), start + timedelta(seconds=1))
    ground_1 = [r for r in by_kind[SourceKind.GPS] if r.truth_id == "ground-1"]
    assert gps.rejects.total == 0 and len(fixes) == 2 * len(ground_1) > 0
    # Radar plots over the dialled connection, stamped at compressed wall-clock time.
    events = [etree.fromstring(e + b"</event>") for e in b"".join(cot_chunks).split(b"</event>")[:-1]]
    assert len(events) == len(by_kind[SourceKind.RADAR])
    latest = start + timedelta(seconds=6.0 / SPEEDUP)
    assert all(start.strftime("%Y-%m-%dT%H:%M:%S") <= e.get("time", "") <= latest.strftime("%Y-%m-%dT%H:%M:%S.999Z")
               for e in events)
    assert played.outputs and all("sent" in counts for counts in played.outputs.values())


@pytest.mark.parametrize(
    ("kind", "value", "mode", "host", "port"),
    [
        (SourceKind.ADSB, "127.0.0.1:30003", OutputMode.LISTEN, "127.0.0.1", 30003),
        (SourceKind.AIS, "10.0.0.2:10110", OutputMode.UDP, "10.0.0.2", 10110),
        (SourceKind.AIS, "listen:0.0.0.0:0", OutputMode.LISTEN, "0.0.0.0", 0),
        (SourceKind.RADAR, "connect:[::1]:8087", OutputMode.CONNECT, "::1", 8087),
    ],
)
def test_output_addresses(kind: SourceKind, value: str, mode: OutputMode, host: str, port: int) -> None:
    assert parse_output(kind, value) == OutputSpec(kind, mode, host, port)


@pytest.mark.parametrize("value", ["30003", "host:", "host:port", "host:70000", "udp:host:0", "connect:h:0"])
def test_bad_output_addresses_say_what_is_expected(value: str) -> None:
    with pytest.raises(ValueError, match=r"HOST:PORT|port 0"):
        parse_output(SourceKind.AIS, value)
