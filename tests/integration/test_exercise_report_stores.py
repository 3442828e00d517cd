"""``rallypoint exercise report`` reads SQLite and PostgreSQL stores alike and refuses what it cannot do.

The hand-built history of ``tests/support/aar_history`` (figures known exactly) is written into the
event store and audit log of each backend; the command's figures must equal those computed in
process from the same rows.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rallypoint.security.audit import AuditLog
from rallypoint.storage.factory import open_stores
from tests.support.aar_history import AUDIT, T0, WINDOW, build, history
from tests.support.postgres import PostgresDatabase


def seed(url: str, data_dir: Path) -> None:
    async def go() -> None:
        stores = open_stores(url, data_dir)
        events, log = stores.events(), AuditLog(stores.audit())
        try:
            await events.append(history())
            for at, actor, action, target in AUDIT:
                await log.append(actor, action, target, now_ms=T0 + at)
        finally:
            await events.close()
            await log.close()

    asyncio.run(go())


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def report(data_dir: Path, **options: str) -> subprocess.CompletedProcess[str]:
    """The command over the hand-built window; ``options`` (``out=``, ``exercise=``) add or replace flags."""
    flags = {"since": iso(WINDOW[0]), "until": iso(WINDOW[1]), "data_dir": str(data_dir), **options}
    args = [part for key, value in flags.items() for part in (f"--{key.replace('_', '-')}", value)]
    return subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "exercise", "report", *args],
                          capture_output=True, text=True, timeout=300)


def expected() -> dict[str, Any]:
    figures: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(build()))
    return figures


def test_sqlite_figures_equal_the_in_process_ones(tmp_path: Path) -> None:
    seed("sqlite://", tmp_path)
    done = report(tmp_path, out=str(tmp_path / "r.json"), exercise="drill")
    assert done.returncode == 0, done.stderr
    assert msgspec.json.decode((tmp_path / "r.json").read_bytes()) == expected()


def test_postgresql_figures_equal_the_in_process_ones(postgres_database: PostgresDatabase, tmp_path: Path) -> None:
    dsn = asyncio.run(postgres_database.fresh())
    seed(dsn, tmp_path)
    done = report(tmp_path, out=str(tmp_path / "r.json"), exercise="drill", storage=dsn)
    assert done.returncode == 0, done.stderr
    assert msgspec.json.decode((tmp_path / "r.json").read_bytes()) == expected()


@pytest.mark.parametrize(("options", "words"), [
    ({"out": "r.txt"}, "must end in .html, .pdf or .json"),
    ({"exercise": "no spaces"}, "letters, digits, - and _"),
    ({"since": iso(WINDOW[1])}, "--until must be later than --since"),
    ({"late_after": "-1"}, "--late-after"),
])
def test_bad_options_exit_2(tmp_path: Path, options: dict[str, str], words: str) -> None:
    seed("sqlite://", tmp_path)
    done = report(tmp_path, **{"out": str(tmp_path / "r.html"), **options})
    assert done.returncode == 2 and words in " ".join(done.stderr.split()), done.stderr
    assert not (tmp_path / "r.html").exists()


def test_no_event_database_is_an_error_not_an_empty_report(tmp_path: Path) -> None:
    done = report(tmp_path / "nowhere", out=str(tmp_path / "r.html"))
    assert done.returncode == 1 and "no event database" in done.stderr
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "nowhere" / "events.db").exists()
