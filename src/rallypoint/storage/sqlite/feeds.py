"""SQLite feed store: accepted track merges (``DATA_DIR/feeds.db`` by convention)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rallypoint.storage.base.feeds import MergeRecord
from rallypoint.storage.sqlite.worker import SqliteWorker

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE merges (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        primary_kind    TEXT    NOT NULL,
        primary_value   TEXT    NOT NULL,
        secondary_kind  TEXT    NOT NULL,
        secondary_value TEXT    NOT NULL,
        accepted_ms     INTEGER NOT NULL,
        operator        TEXT    NOT NULL,
        UNIQUE (primary_kind, primary_value, secondary_kind, secondary_value)
    );
    """,
)

_COLUMNS = "primary_kind, primary_value, secondary_kind, secondary_value, accepted_ms, operator"


class SqliteFeedRecords:
    """Accepted merges in a SQLite file; one worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="feed")

    async def add_merge(self, record: MergeRecord) -> bool:
        """Keep an accepted merge; False if that pair is already kept."""
        return await self._worker.run(_add, record)

    async def merges(self) -> list[MergeRecord]:
        """Every accepted merge, oldest first."""
        return await self._worker.run(_all)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _add(db: sqlite3.Connection, r: MergeRecord) -> bool:
    cur = db.execute(
        f"INSERT OR IGNORE INTO merges ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (r.primary_kind, r.primary_value, r.secondary_kind, r.secondary_value, r.accepted_ms, r.operator),
    )
    return cur.rowcount > 0


def _all(db: sqlite3.Connection) -> list[MergeRecord]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM merges ORDER BY seq").fetchall()
    return [
        MergeRecord(primary_kind=r[0], primary_value=r[1], secondary_kind=r[2], secondary_value=r[3],
                    accepted_ms=r[4], operator=r[5])
        for r in rows
    ]
