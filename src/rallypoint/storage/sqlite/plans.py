"""SQLite plan versions, in the missions database (``missions.db``, the missions migrations).

The table references the mission's guid with ``ON DELETE CASCADE``: a deleted mission takes its
plan with it. Each version row holds the whole plan as JSON.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from rallypoint.model.plan import Plan, PlanVersion, VersionInfo
from rallypoint.storage.sqlite.missions_schema import MIGRATIONS
from rallypoint.storage.sqlite.worker import SqliteWorker, transaction

_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(Plan).decode
_COLUMNS = "guid, version, author, time_ms, reason, reverted_from, plan"


class SqlitePlanStore:
    """``PlanRecords`` in the SQLite missions database."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=MIGRATIONS, what="missions")

    async def append(self, version: PlanVersion) -> bool:
        """Store a new version; False (nothing written) if its number is taken or the mission is gone."""
        return await self._worker.run(_append, version)

    async def latest(self, mission_guid: str) -> PlanVersion | None:
        """The newest version of a mission's plan, None if it has none."""
        return await self._worker.run(_latest, mission_guid)

    async def get(self, mission_guid: str, version: int) -> PlanVersion | None:
        """One version, None if there is no such version."""
        return await self._worker.run(_get, mission_guid, version)

    async def versions(self, mission_guid: str, *, limit: int = 1000) -> list[VersionInfo]:
        """The newest ``limit`` versions without their plans, oldest first."""
        return await self._worker.run(_versions, mission_guid, limit)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _append(db: sqlite3.Connection, v: PlanVersion) -> bool:
    def job() -> bool:
        if db.execute("SELECT 1 FROM missions WHERE guid = ?", (v.mission_guid,)).fetchone() is None:
            return False
        cur = db.execute(
            f"INSERT OR IGNORE INTO plan_versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (v.mission_guid, v.version, v.author, v.time_ms, v.reason, v.reverted_from, _ENCODE(v.plan)),
        )
        return cur.rowcount > 0

    return transaction(db, job)


def _version_of(row: tuple[Any, ...]) -> PlanVersion:
    guid, version, author, time_ms, reason, reverted_from, plan = row
    return PlanVersion(mission_guid=guid, version=version, author=author, time_ms=time_ms, reason=reason,
                       reverted_from=reverted_from, plan=_DECODE(bytes(plan)))


def _latest(db: sqlite3.Connection, guid: str) -> PlanVersion | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM plan_versions WHERE guid = ? ORDER BY version DESC LIMIT 1",
                     (guid,)).fetchone()
    return None if row is None else _version_of(row)


def _get(db: sqlite3.Connection, guid: str, version: int) -> PlanVersion | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM plan_versions WHERE guid = ? AND version = ?",
                     (guid, version)).fetchone()
    return None if row is None else _version_of(row)


def _versions(db: sqlite3.Connection, guid: str, limit: int) -> list[VersionInfo]:
    rows = db.execute(
        "SELECT version, author, time_ms, reason, reverted_from FROM plan_versions WHERE guid = ?"
        " ORDER BY version DESC LIMIT ?", (guid, limit)).fetchall()
    return [VersionInfo(version=v, author=a, time_ms=t, reason=r, reverted_from=f) for v, a, t, r, f in reversed(rows)]
