"""Plans on the real server with ``--storage postgresql://...``, and on SQLite: versions survive a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.integration.test_plans import FIRST, PLAN
from tests.support.postgres import PostgresDatabase
from tests.support.server import ServerProcess


async def _write(proc: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proc.ports['http']}", timeout=10) as http:
        assert (await http.post("/api/missions", json={"name": "Op"})).status_code == 201
        assert (await http.put(PLAN, json={"plan": FIRST, "reason": "first draft"})).status_code == 200
        patched = await http.patch(PLAN, json={"reason": "route closed", "remove": ["ingress"]})
        assert patched.status_code == 200, patched.text


async def _read(proc: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proc.ports['http']}", timeout=10) as http:
        versions = (await http.get(PLAN + "/versions")).json()
        assert [(v["version"], v["reason"]) for v in versions] == [(1, "first draft"), (2, "route closed")]
        assert (await http.get(PLAN)).json()["plan"]["routes"] == []
        reverted = await http.post(PLAN + "/revert", json={"version": 1, "reason": "reopened after restart"})
        assert reverted.status_code == 200 and reverted.json()["version"] == 3
        assert (await http.get(PLAN + "/diff", params={"from": 1, "to": 3})).json()["changed"] == []


async def _across_restart(data_dir: Path, *args: str) -> None:
    first = ServerProcess(data_dir, *args)
    first.start()
    try:
        await _write(first)
        assert await asyncio.to_thread(first.terminate) == 0, first.tail()
    finally:
        first.stop()
    second = ServerProcess(data_dir, *args)
    second.start()
    try:
        await _read(second)
    finally:
        second.stop()


async def test_plan_versions_survive_a_restart_on_postgresql(data_dir: Path,
                                                             postgres_database: PostgresDatabase) -> None:
    await _across_restart(data_dir, "--storage", await postgres_database.fresh())


async def test_plan_versions_survive_a_restart_on_sqlite(data_dir: Path) -> None:
    await _across_restart(data_dir)
