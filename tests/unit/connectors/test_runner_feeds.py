"""Feeds opened from their URLs (``feed_opener``): the right runner and the real decoder for each format."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.config import FeedConfig
from rallypoint.connectors.feeds import feed_opener
from rallypoint.connectors.runners.datagram import UdpRunner
from rallypoint.connectors.runners.documents import FileWatchRunner, HttpPollRunner
from rallypoint.connectors.runners.stream import TcpClientRunner, TcpServerRunner
from rallypoint.connectors.spec import FeedUrlError
from rallypoint.services.feed_types import LayerItem
from tests.support.poll import wait_until
from tests.unit.connectors.runner_support import Collected, running


class Layers:
    def __init__(self) -> None:
        self.documents: list[tuple[str, list[LayerItem]]] = []

    def __call__(self, name: str, items: Sequence[LayerItem]) -> None:
        self.documents.append((name, list(items)))


def open_feed(url: str, **fields: object) -> tuple[object, Collected, Layers]:
    sink, layers = Collected(), Layers()
    _info, runner = feed_opener(ManualClock(), random.Random(5))(FeedConfig(url=url, **fields), sink, layers)  # type: ignore[arg-type]
    return runner, sink, layers


@pytest.mark.parametrize(
    ("url", "runner_type"),
    [
        ("sbs+tcp://127.0.0.1:30003", TcpClientRunner),
        ("ais+tcp://127.0.0.1:5631?listen=1", TcpServerRunner),
        ("ais+udp://127.0.0.1:10110", UdpRunner),
        ("cot+udp://239.2.3.1:6969", UdpRunner),
        ("adsb-json+http://127.0.0.1/data/aircraft.json", HttpPollRunner),
        ("kml+file:///srv/zones.kmz", FileWatchRunner),
        ("aprs+tcp://127.0.0.1:14580?login=N0CALL", TcpClientRunner),
        ("modes+tcp://127.0.0.1:30002", TcpClientRunner),
        ("nmea+udp://127.0.0.1:10110", UdpRunner),
    ],
)
def test_each_transport_gets_its_runner(url: str, runner_type: type) -> None:
    runner, _, _ = open_feed(url)
    assert isinstance(runner, runner_type)


def test_a_bad_definition_is_refused_before_anything_runs() -> None:
    with pytest.raises(FeedUrlError, match="unknown format"):
        open_feed("radar+tcp://127.0.0.1:1")
    with pytest.raises(FeedUrlError, match="stale_s"):
        open_feed("sbs+tcp://127.0.0.1:1", stale_s=0)


async def test_geojson_file_feed_hands_whole_layers(tmp_path: Path) -> None:
    path = tmp_path / "zones.geojson"
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "z1", "properties": {"name": "Zone 1"},
         "geometry": {"type": "Polygon", "coordinates": [[[4.0, 51.0], [4.1, 51.0], [4.1, 51.1], [4.0, 51.0]]]}},
        {"type": "Feature", "id": "p1", "properties": {"name": "Post"},
         "geometry": {"type": "Point", "coordinates": [4.05, 51.05]}},
    ]}
    path.write_text(json.dumps(collection))
    runner, sink, layers = open_feed(f"geojson+file://{path}?interval=0.5")
    async with running(runner):
        await wait_until(lambda: layers.documents, "the layer")
        path.write_text("{not json")
        await wait_until(lambda: runner.statistics().rejects.get("malformed"), "the broken document counted")  # type: ignore[attr-defined]
    name, items = layers.documents[0]
    assert name == "geojson-zones"
    assert {(i.id, i.kind, i.name) for i in items} == {("z1", "polygon", "Zone 1"), ("p1", "point", "Post")}
    assert len(layers.documents) == 1  # a document that failed to decode leaves the layer as it was
    assert sink.items == []  # layers are drawn, not tracked


async def test_cot_udp_feed_decodes_radar_like_tracks_without_identity() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner, sink, _ = open_feed(f"cot+udp://127.0.0.1:{port}?name=radar")
    async with running(runner):
        await runner.bound.wait()  # type: ignore[attr-defined]
        event = (b'<event version="2.0" uid="trk-77" type="a-u-S" how="m-r" time="2030-01-01T00:00:00Z" '
                 b'start="2030-01-01T00:00:00Z" stale="2030-01-01T00:05:00Z"><point lat="51.9" lon="4.1" '
                 b'hae="0" ce="50" le="9999999"/><detail/></event>')
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            out.sendto(event, ("127.0.0.1", port))
            out.sendto(b"<event garbage", ("127.0.0.1", port))
        await wait_until(lambda: sink.items and runner.statistics().rejects, "plot and reject")  # type: ignore[attr-defined]
    [(name, obs)] = sink.items
    assert name == "radar" and obs.identity is None and obs.category == "a-u-S" and obs.ce_m == 50.0


async def test_a_feed_whose_port_is_taken_stops_with_its_error_and_the_rest_go_on() -> None:
    from rallypoint.fusion.tracker import Tracker
    from rallypoint.services.feeds import FeedService

    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    clock = ManualClock()
    service = FeedService(clock=clock, accept=lambda envelope: None, tracker=Tracker(),
                          opener=feed_opener(clock, random.Random(1)), tick_s=0.05)
    service.add(FeedConfig(url=f"nmea+udp://127.0.0.1:{port}", name="blocked"))
    service.add(FeedConfig(url="sbs+tcp://127.0.0.1:1", name="other"))
    task = asyncio.create_task(service.run())
    try:
        await wait_until(lambda: service.view("blocked").error, "the bind failure reported")
        assert "Address already in use" in (service.view("blocked").error or "")
        assert service.view("other").error is None and not task.done()
    finally:
        await service.close()
        await asyncio.wait_for(task, 10)
        taken.close()


async def test_an_aircraft_json_feed_polls_and_decodes_through_the_real_decoder() -> None:
    from tests.unit.connectors.test_runner_documents import FakeHttp

    http = FakeHttp()
    await http.start()
    document = json.dumps({"now": 1_780_000_000.0, "aircraft": [
        {"hex": "4ca2d6", "flight": "EIN123  ", "lat": 53.4, "lon": -6.2, "alt_geom": 12000, "gs": 420.0,
         "track": 90.0, "category": "A3", "nac_p": 9, "seen_pos": 0.5},
        {"hex": "abc123"},  # no position: skipped
    ]}).encode()
    http.answers = [(200, {"Content-Length": str(len(document))}, document)]
    runner, sink, _ = open_feed(f"adsb-json+http://127.0.0.1:{http.port}/data/aircraft.json?interval=0.5")
    async with running(runner):
        await wait_until(lambda: sink.items, "the aircraft")
    [(name, obs)] = sink.items
    assert name == f"adsb-json-127.0.0.1-{http.port}"
    assert obs.identity is not None and obs.identity.value == "4ca2d6"
    assert (obs.name, obs.category, obs.lat, obs.lon) == ("EIN123", "A3", 53.4, -6.2)
