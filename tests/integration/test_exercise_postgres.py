"""Exercises on ``--storage postgresql://...``: marked history and the control registry survive a restart."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rallypoint.client.http import RallypointClient
from tests.integration.test_exercise_marking import marked
from tests.support.accounts import PASSWORDS
from tests.support.cot_client import CotClient, cot
from tests.support.postgres import PostgresDatabase
from tests.support.server import ServerProcess


def _history(data_dir: Path, dsn: str, exercise: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "history", "query", "--data-dir", str(data_dir),
         "--storage", dsn, "--exercise", exercise, "--format", "json"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    return [row["uid"] for row in json.loads(out.stdout)]


@pytest.mark.timeout(300)  # two server starts and CLI runs on a shared database
async def test_exercise_history_and_control_on_postgresql(
    data_dir: Path, postgres_database: PostgresDatabase, clients: list[object]
) -> None:
    dsn = await postgres_database.fresh()
    # The accounts live in the database too: the command line reaches it through RALLYPOINT_STORAGE.
    await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "rallypoint.cli.main", "user", "add", "alice",
                                             "--group", "A", "--password-stdin", "--data-dir", str(data_dir)],
                            input=PASSWORDS["alice"] + "\n", capture_output=True, text=True, check=True,
                            env={**os.environ, "RALLYPOINT_STORAGE": dsn})
    first = ServerProcess(data_dir, "--storage", dsn)
    await asyncio.to_thread(first.start)
    try:
        alice = RallypointClient(f"http://127.0.0.1:{first.ports['http']}", username="alice",
                                 password=PASSWORDS["alice"], timeout=30)
        await asyncio.to_thread(alice.register_exercise, "pg-drill", name="PG drill",
                                scenario_sha256=hashlib.sha256(b"pg").hexdigest(), units=2, injects=["cas"])
        assert (await asyncio.to_thread(alice.control_exercise, "pg-drill", "start"))["seq"] == 1
        assert (await asyncio.to_thread(alice.control_exercise, "pg-drill", "inject", inject="cas"))["seq"] == 2
        sender = await CotClient.connect(first.ports["cot"])
        watcher = await CotClient.connect(first.ports["cot"])
        clients.extend([sender, watcher])
        await sender.send(marked("pg-unit-1", "u1").replace(b"drill", b"pg-drill"))
        await sender.send(cot("pg-live", "a-h-G"))
        await watcher.wait_uid("pg-live")
        assert await asyncio.to_thread(first.terminate) == 0, first.tail()  # drains the store
    finally:
        first.stop()

    assert await asyncio.to_thread(_history, data_dir, dsn, "pg-drill") == ["pg-unit-1"]
    live = await asyncio.to_thread(_history, data_dir, dsn, "none")
    assert "pg-live" in live and "pg-unit-1" not in live

    second = ServerProcess(data_dir, "--storage", dsn)
    await asyncio.to_thread(second.start)
    try:
        alice = RallypointClient(f"http://127.0.0.1:{second.ports['http']}", username="alice",
                                 password=PASSWORDS["alice"], timeout=30)
        again = await asyncio.to_thread(alice.exercise, "pg-drill")
        assert (again["state"], again["controller"], again["injects"]) == ("running", "alice", ["cas"])
        feed = await asyncio.to_thread(alice.exercise_commands, "pg-drill")
        assert [(c["seq"], c["action"]) for c in feed] == [(1, "start"), (2, "inject")]
        assert (await asyncio.to_thread(alice.control_exercise, "pg-drill", "stop"))["seq"] == 3
    finally:
        second.stop()
