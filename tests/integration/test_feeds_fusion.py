"""An identity-less radar CoT stream of the same vessels an AIS feed reports produces no extra tracks:
the radar plots join the vessels' tracks (fused), end to end through a real server and a PyTAK client."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rallypoint.client import AsyncRallypointClient
from rallypoint.fusion.emit import AisEmitter, RadarCotEmitter
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation
from tests.integration.test_feeds import free_udp_port, pytak_picture
from tests.support.accounts import PASSWORDS, create_users
from tests.support.poll import wait_until, wait_until_async
from tests.support.server import ServerProcess

# Two vessels 2 km apart, each steaming east at 5 m/s.
VESSELS = {"244000001": (51.90, 4.10), "244000002": (51.918, 4.10)}
SPEED_MPS = 5.0
M_PER_DEG = 111_195.0
# Seconds between two reports of each source (a real source's own rate, not a wait for the server).
REPORT_EVERY_S = 0.5


@pytest.fixture
def fusion_server(data_dir: Path) -> Iterator[tuple[ServerProcess, int, int]]:
    create_users(data_dir)
    ais, radar = free_udp_port(), free_udp_port()
    with ServerProcess(
        data_dir,
        "--feed", f"ais+udp://127.0.0.1:{ais}?name=harbour",
        "--feed", f"cot+udp://127.0.0.1:{radar}?name=radar",
    ) as proc:
        yield proc, ais, radar


def position(mmsi: str, t: float) -> tuple[float, float]:
    lat, lon = VESSELS[mmsi]
    return lat, lon + SPEED_MPS * t / (M_PER_DEG * math.cos(math.radians(lat)))


def report(mmsi: str, t: float, source: str, *, identified: bool, ce_m: float) -> Observation:
    now = datetime.now(UTC)
    lat, lon = position(mmsi, t)
    return Observation(
        source=source, received_at=now, source_time=now, lat=lat, lon=lon, domain=Domain.SEA,
        identity=Identity(kind=IdentityKind.MMSI, value=mmsi) if identified else None,
        name=f"VESSEL {mmsi[-1]}" if identified else None, category="70" if identified else None,
        course_deg=90.0, speed_mps=SPEED_MPS, ce_m=ce_m,
    )



async def _feeds_listening(base: str) -> None:
    """Every feed's socket is bound (a datagram sent before would be lost)."""
    async with AsyncRallypointClient(base, username="root", password=PASSWORDS["root"]) as admin:

        async def listening() -> bool:
            return all(f["statistics"]["connected"] for f in await admin.feeds())

        await wait_until_async(listening, "feeds listening", timeout=20)

async def test_radar_plots_of_ais_vessels_make_no_extra_tracks(
    fusion_server: tuple[ServerProcess, int, int],
) -> None:
    server, ais_port, radar_port = fusion_server
    ais, radar = AisEmitter(), RadarCotEmitter(stale_s=30.0)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    base = f"http://127.0.0.1:{server.ports['http']}"
    await _feeds_listening(base)
    started = asyncio.get_running_loop().time()
    async with pytak_picture(server.ports["cot"]) as picture:
        for step in range(16):
            t = asyncio.get_running_loop().time() - started
            for mmsi in VESSELS:
                for sentence in ais.emit(report(mmsi, t, "truth", identified=True, ce_m=10.0)).splitlines():
                    out.sendto(sentence + b"\r\n", ("127.0.0.1", ais_port))
                if step >= 2:  # the radar starts once the vessels are known from AIS
                    plot = radar.emit(report(mmsi, t, "coastal", identified=False, ce_m=30.0))
                    out.sendto(plot, ("127.0.0.1", radar_port))
            await asyncio.sleep(REPORT_EVERY_S)
        vessel_uids = {f"MMSI-{mmsi}" for mmsi in VESSELS}
        await wait_until(lambda: vessel_uids <= set(picture.seen), "both vessels on the map")
        async with AsyncRallypointClient(base, username="root", password=PASSWORDS["root"]) as admin:
            feeds = {f["name"]: f for f in await admin.feeds()}
        # Every plot arrived and was decoded; none of them became a track of its own.
        assert feeds["radar"]["statistics"]["observations"] == 2 * 14
        feed_uids = {uid for uid in picture.seen if uid.startswith("MMSI-") or "trk-" in uid}
        assert feed_uids == vessel_uids, picture.seen.keys()
        # The vessels' tracks say both sources contributed.
        for uid in vessel_uids:
            assert ("a-n-S-X-M-C", "m-f") in picture.seen[uid], picture.seen[uid]
            assert b'<source name="radar"/>' in picture.raw[uid] and b'<source name="harbour"/>' in picture.raw[uid]
    out.close()


async def test_a_radar_track_shown_before_the_vessels_ais_leaves_the_map_when_they_join(
    fusion_server: tuple[ServerProcess, int, int],
) -> None:
    server, ais_port, radar_port = fusion_server
    ais, radar = AisEmitter(), RadarCotEmitter(stale_s=30.0)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mmsi = "244000001"
    base = f"http://127.0.0.1:{server.ports['http']}"
    await _feeds_listening(base)
    started = asyncio.get_running_loop().time()

    def radar_tracks() -> list[str]:
        return [uid for uid in picture.seen if "trk-" in uid and not uid.endswith(".delete")]

    def send(identified: bool) -> None:
        t = asyncio.get_running_loop().time() - started
        out.sendto(radar.emit(report(mmsi, t, "coastal", identified=False, ce_m=30.0)), ("127.0.0.1", radar_port))
        if identified:
            for sentence in ais.emit(report(mmsi, t, "truth", identified=True, ce_m=10.0)).splitlines():
                out.sendto(sentence + b"\r\n", ("127.0.0.1", ais_port))

    async with pytak_picture(server.ports["cot"]) as picture:
        # Only the radar sees the vessel: a track without identity is confirmed and shown.
        deadline = asyncio.get_running_loop().time() + 20
        while not radar_tracks():
            assert asyncio.get_running_loop().time() < deadline, "the radar track was never shown"
            send(identified=False)
            await asyncio.sleep(REPORT_EVERY_S)
        (anonymous,) = radar_tracks()
        # Its AIS reports arrive: the radar's track joins the vessel's and is deleted on the map at once.
        deadline = asyncio.get_running_loop().time() + 30
        while f"{anonymous}.delete" not in picture.seen:
            assert asyncio.get_running_loop().time() < deadline, f"no deletion: {picture.seen.keys()}"
            send(identified=True)
            await asyncio.sleep(REPORT_EVERY_S)
        assert picture.seen[f"{anonymous}.delete"][-1][0] == "t-x-d-d"
        assert f'uid="{anonymous}"'.encode() in picture.raw[f"{anonymous}.delete"]
        await wait_until(lambda: f"MMSI-{mmsi}" in picture.seen, "the vessel on the map")
        assert radar_tracks() == [anonymous]  # no new identity-less track after the join
    out.close()
