"""History on disk across the server's life: SIGTERM flushes what is pending; retention prunes on start."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.cot_client import CotClient, cot, iso
from tests.support.metrics import metric_value
from tests.support.server import ServerProcess


def _history(data_dir: Path, *args: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "history", "query", "--data-dir", str(data_dir),
         "--format", "json", *args],
        capture_output=True, text=True, check=True,
    )
    rows: list[dict[str, object]] = json.loads(out.stdout)
    return rows


def _old_event(uid: str, days: float) -> bytes:
    """A marker reported ``days`` ago that went stale a minute later."""
    then = datetime.now(UTC) - timedelta(days=days)
    return (
        f'<event version="2.0" uid="{uid}" type="b-m-p-s-m" how="h-g-i-g-o" time="{iso(then)}" '
        f'start="{iso(then)}" stale="{iso(then + timedelta(minutes=1))}">'
        f'<point lat="39.0" lon="-120.0" hae="0" ce="10" le="10"/><detail/></event>'
    ).encode()


async def test_sigterm_writes_every_pending_event_before_exit(data_dir: Path, clients: list[object]) -> None:
    # A flush interval far longer than the test: only the shutdown drain can write these rows.
    server = ServerProcess(data_dir, env={"RALLYPOINT_STORAGE_FLUSH_S": "600", "RALLYPOINT_STORAGE_BATCH": "100000"})
    server.start()
    try:
        a = await CotClient.connect(server.ports["cot"])
        b = await CotClient.connect(server.ports["cot"])
        clients.extend([a, b])
        for i in range(50):
            await a.send(cot(f"drain-{i}", "b-m-p-s-m"))
        await b.wait_uid("drain-49")
        pending = await asyncio.to_thread(metric_value, server, "rallypoint_storage_pending")
        assert pending >= 50, "the events must still be queued in memory when SIGTERM arrives"
        assert await asyncio.to_thread(server.terminate) == 0, server.tail()
    finally:
        server.stop()
    uids = {str(r["uid"]) for r in _history(data_dir, "--type", "b-m-p")}
    assert {f"drain-{i}" for i in range(50)} <= uids


async def test_retention_prunes_old_history_when_the_server_starts(data_dir: Path, clients: list[object]) -> None:
    first = ServerProcess(data_dir)
    first.start()
    try:
        a = await CotClient.connect(first.ports["cot"])
        b = await CotClient.connect(first.ports["cot"])
        clients.extend([a, b])
        await a.send(_old_event("old-3d", 3))
        await a.send(_old_event("old-2d", 2))
        await a.send(cot("fresh", "b-m-p-s-m"))
        await b.wait_uid("fresh")
        assert await asyncio.to_thread(first.terminate) == 0
    finally:
        first.stop()
    assert {str(r["uid"]) for r in _history(data_dir)} >= {"old-3d", "old-2d", "fresh"}
    second = ServerProcess(data_dir, env={"RALLYPOINT_RETENTION_DAYS": "1"})
    second.start()
    try:
        await asyncio.to_thread(second.wait_for_log, "history pruned", events=2)
    finally:
        second.stop()
    remaining = {str(r["uid"]) for r in _history(data_dir)}
    assert "fresh" in remaining
    assert not remaining & {"old-3d", "old-2d"}
