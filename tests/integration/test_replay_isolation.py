"""A replay into a live server never brings expired tracks back as live, and its traffic is marked.

Stored history (hours old) is replayed with ``rallypoint replay --to`` into a real server: each
event arrives re-stamped with its original lifetime, under a prefixed uid, marked ``opex="s-replay"``;
the original uids never reappear in the live picture; an exercise's stored event stays exercise
traffic; and a replay that would reuse the live uids (an empty prefix) is refused.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgspec

from rallypoint.storage.base import StoredEvent
from rallypoint.storage.export import iso_ms
from rallypoint.storage.factory import open_event_store
from tests.support.cot_client import CotClient
from tests.support.server import ServerProcess
from tests.support.stored import make_event

HOUR = 3_600_000


async def _seed(data_dir: Path, rows: list[StoredEvent]) -> None:
    store = open_event_store("sqlite://", data_dir)
    try:
        await store.append(rows)
    finally:
        await store.close()


async def _replay(source: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "rallypoint.cli.main", "replay", *args, "--data-dir", str(source)]
    return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=120)


async def test_replay_restamps_marks_and_never_resurrects_expired_tracks(
    server: ServerProcess, clients: list[object], tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    t0 = int(time.time() * 1000) - 3 * HOUR  # long expired: each report lived 60 s, three hours ago
    old = [make_event("u-old", time=t0 + i * 1000, stale_s=60, callsign="OLD", lat=10 + i / 100) for i in range(3)]
    drill = make_event("RP-EX-drill-u1", time=t0 + 2500, stale_s=60, callsign="SIM")
    # An exercise's stored event: only its opex names the exercise (the replay adds the detail marker).
    xml = drill.xml.replace(b' how="m-g"', b' how="m-g" opex="e-drill"')
    drill = msgspec.structs.replace(drill, exercise="drill", xml=xml)
    await _seed(source, [*old, drill])
    window = ("--since", iso_ms(t0 - 1000), "--until", iso_ms(t0 + 10_000))
    to = f"tcp://127.0.0.1:{server.ports['cot']}"

    refused = await _replay(source, *window, "--to", to, "--uid-prefix", "")
    assert refused.returncode == 2 and "uid prefix" in refused.stderr

    watcher = await CotClient.connect(server.ports["cot"])
    clients.append(watcher)
    sent = await _replay(source, *window, "--to", to, "--speed", "100")
    assert sent.returncode == 0, sent.stderr
    assert "sent 4 events" in sent.stderr
    last = await watcher.wait_for(lambda e: e.uid == "replay-u-old" and abs(e.point.lat - 10.02) < 1e-9, timeout=30)
    sim = await watcher.wait_uid("replay-RP-EX-drill-u1", timeout=30)
    now = int(time.time() * 1000)
    for event in (last, sim):
        assert event.opex == "s-replay"  # replayed traffic says it is simulation
        assert event.stale - event.time == 60_000  # the original lifetime, not a fresh long one
        assert abs(event.time - now) < 10 * 60_000  # re-stamped to the replay, not three hours ago
    assert sim.exercise == "drill" and sim.detail.exercise is not None  # still the exercise's traffic
    assert not watcher.has(lambda e: e.uid in ("u-old", "RP-EX-drill-u1"))

    base = f"http://127.0.0.1:{server.ports['http']}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        tracks = {t["uid"] for t in (await http.get("/api/tracks")).json()}
        assert "u-old" not in tracks and "RP-EX-drill-u1" not in tracks
        assert "replay-u-old" in tracks
        deadline = time.monotonic() + 15
        while True:
            rows = (await http.get("/api/history", params={"exercise": "drill"})).json()["events"]
            if rows or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)  # the store is written in batches: poll until the deadline
        assert [r["uid"] for r in rows] == ["replay-RP-EX-drill-u1"]
        live = {r["uid"] for r in (await http.get("/api/history", params={"exercise": "none"})).json()["events"]}
        assert "replay-u-old" in live and "replay-RP-EX-drill-u1" not in live
