"""A simulated scenario on the real wire formats into a real server's feeds; a PyTAK client's picture is
scored against the truth with OSPA.

The simulator listens like dump1090 (SBS), a GPS (NMEA) and a radar system (CoT) do, so the server's
``sbs+tcp://``, ``nmea+tcp://`` and ``cot+tcp://`` feeds dial it; AIS goes to the server by UDP. The
scenario runs in real time (its sources report every second or two) for a few seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

import numpy as np

from rallypoint.clock import SystemClock
from rallypoint.connectors.emit_play import OutputMode, OutputSpec, Player
from rallypoint.fusion.picture_score import PictureScore
from rallypoint.fusion.scenario import SCENARIOS, Scenario, build_scenario
from rallypoint.fusion.scenario_sources import DEFAULT_SOURCES, SourceKind, simulate
from rallypoint.model.track import Domain
from tests.integration.test_feeds import free_udp_port, pytak_picture
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

            emitted = set(wanted.values())
            scorer = PictureScore(scenario.frame, lambda t: np.array(
                [[s.east, s.north] for s in scenario.truth_at(t) if s.target_id in emitted]), c=CUTOFF_M, p=2)
            for raw in picture.raw.values():
                scorer.receive(raw)
            sample = scorer.sample(played.start + timedelta(seconds=DURATION_S), DURATION_S)
            assert scorer.rejected == 0
            assert sample.ospa.value < CUTOFF_M, sample
            # Every target is on the map, so no target costs the full cutoff as missing.
            assert sample.tracks >= sample.targets == len(emitted)
    finally:
        await asyncio.to_thread(server.stop)
