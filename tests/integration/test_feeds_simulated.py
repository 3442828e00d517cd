"""A simulated scenario on the real wire formats into a real server's feeds; a PyTAK client's picture is
scored against the truth with OSPA.

The simulator listens like dump1090 (SBS), a GPS (NMEA) and a radar system (CoT) do, so the server's
``sbs+tcp://``, ``nmea+tcp://`` and ``cot+tcp://`` feeds dial it; AIS goes to the server by UDP. The
scenario runs in real time (its sources report every second or two) for a few seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from lxml import etree

from rallypoint.clock import SystemClock
from rallypoint.connectors.emit_play import OutputMode, OutputSpec, Player
from rallypoint.fusion.metrics import ospa
from rallypoint.fusion.scenario import SCENARIOS, Scenario, build_scenario
from rallypoint.fusion.scenario_sources import DEFAULT_SOURCES, SourceKind, simulate
from rallypoint.model.track import Domain
from tests.integration.test_feeds import Picture, free_udp_port, pytak_picture
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

DURATION_S = 10.0
CUTOFF_M = 500.0
# The default sources, reporting at least every 2 s so a few seconds suffice to confirm every track.
SOURCES = tuple(dataclasses.replace(s, period_s=min(s.period_s, 2.0), jitter_s=min(s.jitter_s, 0.5))
                for s in DEFAULT_SOURCES)


def expected_uids(scenario: Scenario) -> dict[str, str]:
    """Track uid -> target id, for the targets this test emits (one GPS receiver: ground-1)."""
    out = {}
    for target in scenario.targets:
        match target.domain:
            case Domain.AIR:
                out[f"ICAO-{target.identity.value}"] = target.target_id
            case Domain.SEA:
                out[f"MMSI-{target.identity.value}"] = target.target_id
            case Domain.GROUND if target.target_id == "ground-1":
                out["GPS-gps-1"] = target.target_id
    return out


def estimates_at(picture: Picture, scenario: Scenario, when: datetime) -> np.ndarray:
    """Each feed track's latest CoT position, carried along its course and speed to ``when``, in metres."""
    points = []
    for uid, raw in picture.raw.items():
        if not uid.startswith(("ICAO-", "MMSI-", "GPS-", "trk-")):
            continue
        event = etree.fromstring(raw)
        if event.get("type", "").startswith("t-x-d"):
            continue
        point, track = event.find("point"), event.find("detail/track")
        assert point is not None
        xy = scenario.frame.to_local(float(point.get("lat", "nan")), float(point.get("lon", "nan")))[0]
        if track is not None:
            dt = (when - datetime.fromisoformat(event.get("time", "").replace("Z", "+00:00"))).total_seconds()
            course, speed = math.radians(float(track.get("course", "0"))), float(track.get("speed", "0"))
            xy += (speed * math.sin(course) * dt, speed * math.cos(course) * dt)
        points.append(xy)
    return np.array(points).reshape(-1, 2)


async def test_simulated_feeds_give_a_picture_close_to_the_truth(data_dir: Path) -> None:
    scenario = build_scenario(SCENARIOS["small"], 5, duration_s=DURATION_S)
    reports = simulate(scenario, SOURCES)
    ais_port = free_udp_port()
    player = Player([
        OutputSpec(SourceKind.ADSB, OutputMode.LISTEN, "127.0.0.1", 0),
        OutputSpec(SourceKind.AIS, OutputMode.UDP, "127.0.0.1", ais_port),
        OutputSpec(SourceKind.GPS, OutputMode.LISTEN, "127.0.0.1", 0, unit="ground-1"),
        OutputSpec(SourceKind.RADAR, OutputMode.LISTEN, "127.0.0.1", 0),
    ], SystemClock())
    await player.open()
    port = {spec.kind: p for spec, p in player.listening_ports()}
    server = ServerProcess(
        data_dir,
        "--feed", f"sbs+tcp://127.0.0.1:{port[SourceKind.ADSB]}?name=adsb",
        "--feed", f"ais+udp://127.0.0.1:{ais_port}?name=ais",
        "--feed", f"nmea+tcp://127.0.0.1:{port[SourceKind.GPS]}?name=gps-1",
        "--feed", f"cot+tcp://127.0.0.1:{port[SourceKind.RADAR]}?name=radar",
    )
    # Started off the loop: the feeds dial the simulator's ports while the server comes up.
    await asyncio.to_thread(server.start)
    try:
        async with pytak_picture(server.ports["cot"]) as picture:
            played = await player.play(reports, speedup=1.0, wait_s=30.0)
            assert all(counts.get("clients", 1) >= 1 for counts in played.outputs.values()), played.outputs
            wanted = expected_uids(scenario)
            await wait_until(lambda: set(wanted) <= set(picture.seen), "a track for every emitted target", 20.0)

            end = played.start + timedelta(seconds=DURATION_S)
            estimates = estimates_at(picture, scenario, end)
            truth = np.array([[s.east, s.north] for s in scenario.truth_at(DURATION_S) if s.target_id in
                              set(wanted.values())])
            score = ospa(estimates, truth, c=CUTOFF_M, p=2)
            assert score.value < CUTOFF_M, (score, len(estimates), len(truth))
            # Every target is on the map, so no target costs the full cutoff as missing.
            assert len(estimates) >= len(truth)
    finally:
        await asyncio.to_thread(server.stop)
