"""The real server with ``--storage postgresql://...``: history and the late-joiner picture survive a restart."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.support.cot_client import CotClient, cot, sa
from tests.support.postgres import PostgresDatabase
from tests.support.server import ServerProcess

HOUR_S = 3600.0


def _history(data_dir: Path, dsn: str, *args: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "history", "query", "--data-dir", str(data_dir),
         "--storage", dsn, "--format", "json", *args],
        capture_output=True, text=True, check=True,
    )
    rows: list[dict[str, object]] = json.loads(out.stdout)
    return rows


async def test_server_on_postgresql_keeps_history_and_picture_across_a_restart(
    data_dir: Path, postgres_database: PostgresDatabase, clients: list[object]
) -> None:
    dsn = await postgres_database.fresh()
    first = ServerProcess(data_dir, "--storage", dsn)
    first.start()
    try:
        alpha = await CotClient.connect(first.ports["cot"])
        bravo = await CotClient.connect(first.ports["cot"])
        clients.extend([alpha, bravo])
        await alpha.send(sa("dev-alpha", "ALPHA"))
        await bravo.send(sa("dev-bravo", "BRAVO"))
        await alpha.wait_uid("dev-bravo")
        await alpha.send(cot("pg-marker", "b-m-p-s-m", stale_s=HOUR_S, lat=45.5, lon=7.25))
        await alpha.send(cot("pg-gone", "b-m-p-s-m", stale_s=HOUR_S))
        await alpha.send(cot("del-1", "t-x-d-d", detail='<link uid="pg-gone" relation="p-p" type="b-m-p-s-m"/>'))
        await alpha.send(cot("pg-marker", "b-m-p-s-m", stale_s=HOUR_S, lat=1.0,
                             detail='<marti><dest callsign="BRAVO"/></marti>'))
        await bravo.wait_for(lambda e: e.uid == "pg-marker" and e.point.lat == 1.0)
        assert await asyncio.to_thread(first.terminate) == 0, first.tail()
    finally:
        first.stop()

    rows = _history(data_dir, dsn, "--type", "b-m-p")
    assert [(r["uid"], r["lat"], r["groups"]) for r in rows] == [
        ("pg-marker", 45.5, ["__ANON__"]),
        ("pg-gone", 39.1, ["__ANON__"]),
        ("pg-marker", 1.0, []),  # addressed: history only
    ]

    second = ServerProcess(data_dir, "--storage", dsn)
    second.start()
    try:
        late = await CotClient.connect(second.ports["cot"])
        clients.append(late)
        marker = await late.wait_uid("pg-marker")
        assert (marker.point.lat, marker.point.lon) == (45.5, 7.25)
        peer = await CotClient.connect(second.ports["cot"])
        clients.append(peer)
        await late.barrier(peer)
        assert not late.has(lambda e: e.uid == "pg-gone")
    finally:
        second.stop()


async def test_an_unreachable_database_is_a_clear_error_at_start(data_dir: Path) -> None:
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rallypoint.cli.main", "serve", "--data-dir", str(data_dir),
         "--storage", "postgresql://nobody:secret@127.0.0.1:1/none"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    # Whichever store reaches the database first says so (the mailbox loads its state while the node is built).
    assert "storage error: postgresql " in proc.stderr and "secret" not in proc.stderr
