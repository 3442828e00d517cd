"""Feeds end to end: an SBS feed (TCP) and an AIS feed (UDP) on loopback into a real server, tracks a
PyTAK client receives with the right types; bad input counted while the feed goes on; a source that
drops and comes back keeps its tracks (no duplicates); the feeds API and /metrics."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import json
import re
import socket
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from rallypoint.client import AsyncRallypointClient
from rallypoint.client.http import ApiError
from rallypoint.fusion.emit import AisEmitter, SbsEmitter, nmea_sentences
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation
from tests.support.accounts import PASSWORDS, create_users
from tests.support.poll import wait_until, wait_until_async
from tests.support.server import ServerProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

ICAO = "4ca2d6"
MMSI = "244123456"
_EVENT = re.compile(rb"<event[^>]*>.*?</event>", re.S)
_ATTR = re.compile(rb'\s(uid|type|how)="([^"]*)"')


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SbsSource:
    """A dump1090-like SBS server on loopback: every client gets what ``send`` broadcasts."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.accepted = 0

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.writers.append(writer)

    async def send(self, data: bytes) -> None:
        for writer in self.writers:
            writer.write(data)
            await writer.drain()

    async def drop(self) -> None:
        """Close every connection and stop listening (the receiver restarts)."""
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()


class Picture:
    """What a PyTAK client on the plain CoT port received: uid -> list of (type, how)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[str, str]]] = {}
        self.raw: dict[str, bytes] = {}

    async def read(self, reader: asyncio.StreamReader) -> None:
        buf = b""
        while chunk := await reader.read(65536):
            buf += chunk
            end = 0
            for match in _EVENT.finditer(buf):
                head = match.group(0).split(b">", 1)[0]  # the <event> tag's own attributes only
                attrs = {k.decode(): v.decode() for k, v in _ATTR.findall(head)}
                if "uid" in attrs:
                    self.seen.setdefault(attrs["uid"], []).append((attrs.get("type", ""), attrs.get("how", "")))
                    self.raw[attrs["uid"]] = match.group(0)
                end = match.end()
            buf = buf[end:]


@pytest.fixture
def feed_ports() -> dict[str, int]:
    return {"ais": free_udp_port()}


@pytest.fixture
async def sbs_source() -> AsyncIterator[SbsSource]:
    source = SbsSource()
    await source.start()
    yield source
    with contextlib.suppress(AssertionError):
        await source.drop()


@pytest.fixture
def feed_server(data_dir: Path, sbs_source: SbsSource, feed_ports: dict[str, int]) -> Iterator[ServerProcess]:
    create_users(data_dir)
    with ServerProcess(
        data_dir,
        "--feed", f"sbs+tcp://127.0.0.1:{sbs_source.port}?name=adsb",
        "--feed", f"ais+udp://127.0.0.1:{feed_ports['ais']}?name=harbour",
    ) as proc:
        yield proc


@contextlib.asynccontextmanager
async def pytak_picture(port: int) -> AsyncIterator[Picture]:
    parser = configparser.ConfigParser()
    parser["test"] = {"COT_URL": f"tcp://127.0.0.1:{port}"}
    reader, writer = await pytak.protocol_factory(parser["test"])
    picture = Picture()
    task = asyncio.create_task(picture.read(reader))
    try:
        yield picture
    finally:
        task.cancel()
        writer.close()


def aircraft(step: int) -> Observation:
    now = datetime.now(UTC)
    return Observation(source="truth", received_at=now, source_time=now, lat=51.40 + step * 0.001, lon=-0.45,
                       domain=Domain.AIR, identity=Identity(kind=IdentityKind.ICAO, value=ICAO), name="BAW123",
                       alt_m=3000.0, speed_mps=120.0, course_deg=0.0)


def vessel(step: int) -> Observation:
    now = datetime.now(UTC)
    return Observation(source="truth", received_at=now, source_time=now, lat=51.90, lon=4.10 + step * 0.0001,
                       domain=Domain.SEA, identity=Identity(kind=IdentityKind.MMSI, value=MMSI), name="NORDIC STAR",
                       category="70", speed_mps=4.0, course_deg=90.0, ce_m=10.0)


async def feeds_of(server: ServerProcess) -> dict[str, dict[str, object]]:
    async with AsyncRallypointClient(f"http://127.0.0.1:{server.ports['http']}", username="root",
                                     password=PASSWORDS["root"]) as admin:
        return {f["name"]: f for f in await admin.feeds()}


async def test_sbs_and_ais_feeds_reach_a_pytak_client_with_the_right_types(
    feed_server: ServerProcess, sbs_source: SbsSource, feed_ports: dict[str, int]
) -> None:
    sbs, ais = SbsEmitter(), AisEmitter()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    aircraft_uid, vessel_uid = f"ICAO-{ICAO}", f"MMSI-{MMSI}"
    async with pytak_picture(feed_server.ports["cot"]) as picture:
        await wait_until(lambda: sbs_source.writers, "the server dialled the SBS source")
        step = 0

        async def report() -> None:
            nonlocal step
            step += 1
            await sbs_source.send(sbs.emit(aircraft(step)))
            for sentence in ais.emit(vessel(step)).splitlines():
                udp.sendto(sentence + b"\r\n", ("127.0.0.1", feed_ports["ais"]))

        async def both_seen() -> bool:
            await report()
            return aircraft_uid in picture.seen and vessel_uid in picture.seen

        await wait_until_async(both_seen, "the aircraft and the vessel tracks", timeout=20, interval=0.1)
        assert picture.seen[aircraft_uid][-1] == ("a-n-A-C-F", "m-g")
        assert picture.seen[vessel_uid][-1] == ("a-n-S-X-M-C", "m-g")
        assert b'callsign="NORDIC STAR"' in picture.raw[vessel_uid]
        assert b'<source name="harbour"/>' in picture.raw[vessel_uid]
        assert b'callsign="BAW123"' in picture.raw[aircraft_uid]

        # Bad input on both feeds: counted per reason, and the feeds go on.
        await sbs_source.send(b"MSG,3,this is not an SBS line\r\nnonsense\r\n")
        udp.sendto(b"!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*00\r\n", ("127.0.0.1", feed_ports["ais"]))
        before = len(picture.seen[aircraft_uid])
        await report()
        await wait_until(lambda: len(picture.seen[aircraft_uid]) > before, "the aircraft after bad input")
        stats = await feeds_of(feed_server)
        assert sum(stats["adsb"]["statistics"]["rejects"].values()) >= 1  # type: ignore[index, union-attr]
        assert sum(stats["harbour"]["statistics"]["rejects"].values()) >= 1  # type: ignore[index, union-attr]

        # The SBS source drops and comes back on its port: the feed reconnects, same track, no new one.
        port = sbs_source.port
        await sbs_source.drop()
        await sbs_source.start(port)
        await wait_until(lambda: sbs_source.writers, "the feed reconnected", timeout=30)
        before = len(picture.seen[aircraft_uid])
        await report()
        await wait_until(lambda: len(picture.seen[aircraft_uid]) > before, "the aircraft after the reconnect")
        feed_tracks = {uid for uid in picture.seen if uid.startswith(("ICAO-", "MMSI-", "trk-"))}
        assert feed_tracks == {aircraft_uid, vessel_uid}
        stats = await feeds_of(feed_server)
        assert stats["adsb"]["statistics"]["reconnects"] >= 1  # type: ignore[index, operator]
    udp.close()

    metrics = httpx.get(f"http://127.0.0.1:{feed_server.ports['http']}/metrics").text
    assert 'rallypoint_feed_observations_total{feed="adsb"}' in metrics
    assert 'rallypoint_feed_connected{feed="harbour"} 1.0' in metrics


async def test_feeds_api_adds_pauses_resumes_and_removes(feed_server: ServerProcess) -> None:
    base = f"http://127.0.0.1:{feed_server.ports['http']}"
    port = free_udp_port()
    async with AsyncRallypointClient(base, username="root", password=PASSWORDS["root"]) as admin:
        listed = {f["name"]: f for f in await admin.feeds()}
        assert set(listed) == {"adsb", "harbour"} and listed["adsb"]["origin"] == "config"
        added = await admin.add_feed(f"nmea+udp://127.0.0.1:{port}", name="gps", groups=["Ops"], stale_s=60)
        assert (added["name"], added["groups"], added["origin"], added["paused"]) == ("gps", ["Ops"], "api", False)
        # The added feed runs at once: a GPS fix sent to it is decoded.
        fix = nmea_sentences(Observation(source="gps", received_at=datetime.now(UTC), source_time=datetime.now(UTC),
                                         lat=52.0, lon=5.0, ce_m=5.0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:

            async def decoded() -> object:
                # UDP may lose the fix: resend it until the feed reports an observation.
                sender.sendto(fix, ("127.0.0.1", port))
                return {f["name"]: f for f in await admin.feeds()}["gps"]["statistics"]["observations"]

            await wait_until_async(decoded, "an observation decoded by the added feed", timeout=20, interval=0.1)
        with pytest.raises(ApiError) as taken:
            await admin.add_feed(f"nmea+udp://127.0.0.1:{port}", name="gps")
        assert taken.value.status == 409
        with pytest.raises(ApiError) as bad:
            await admin.add_feed("sbs+udp://127.0.0.1:30003")
        assert bad.value.status == 400 and "format sbs cannot use udp" in bad.value.detail
        with pytest.raises(ApiError) as outside:
            await admin.add_feed("geojson+file:///etc/passwd")
        assert outside.value.status == 400 and "must be under" in outside.value.detail
        assert (await admin.pause_feed("gps"))["paused"] is True
        assert (await admin.resume_feed("gps"))["paused"] is False
        removed = await admin.remove_feed("gps")
        assert removed["name"] == "gps"
        assert "gps" not in {f["name"] for f in await admin.feeds()}
        with pytest.raises(ApiError) as missing:
            await admin.pause_feed("gps")
        assert missing.value.status == 404
    async with AsyncRallypointClient(base, username="alice", password=PASSWORDS["alice"]) as member:
        with pytest.raises(ApiError) as refused:
            await member.feeds()
        assert refused.value.status == 403


async def test_a_geojson_layer_is_drawn_and_its_removed_items_are_deleted(data_dir: Path, tmp_path: Path) -> None:
    layer = tmp_path / "zones.geojson"

    def write(*features: dict[str, object]) -> None:
        layer.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))

    zone = {"type": "Feature", "id": "zone-1", "properties": {"name": "Landing zone"},
            "geometry": {"type": "Polygon", "coordinates": [[[4.0, 51.0], [4.1, 51.0], [4.1, 51.1], [4.0, 51.0]]]}}
    post = {"type": "Feature", "id": "post-1", "properties": {"name": "Aid post"},
            "geometry": {"type": "Point", "coordinates": [4.05, 51.05]}}
    write(zone, post)
    with ServerProcess(data_dir, "--feed", f"geojson+file://{layer}?interval=0.5&name=zones") as server:
        async with pytak_picture(server.ports["cot"]) as picture:
            await wait_until(lambda: {"layer.zones.zone-1", "layer.zones.post-1"} <= set(picture.seen), "layer drawn")
            assert picture.seen["layer.zones.zone-1"][-1] == ("u-d-f", "h-e")
            assert picture.seen["layer.zones.post-1"][-1] == ("b-m-p-s-m", "h-e")
            assert picture.raw["layer.zones.zone-1"].count(b"<link point=") == 4
            write(zone)  # the aid post left the layer
            await wait_until(lambda: "layer.zones.post-1.delete" in picture.seen, "the removed item deleted")
            assert picture.seen["layer.zones.post-1.delete"][-1][0] == "t-x-d-d"
