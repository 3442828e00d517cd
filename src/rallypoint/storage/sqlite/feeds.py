"""SQLite feed store: accepted track merges and feeds added at run time (``DATA_DIR/feeds.db``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from rallypoint.storage.base.feeds import FeedRecord, MergeRecord
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
    """
    CREATE TABLE feeds (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        node      TEXT    NOT NULL,
        name      TEXT    NOT NULL,
        url       TEXT    NOT NULL,
        groups_json TEXT  NOT NULL,
        stale_s   REAL,
        quality   REAL,
        added_ms  INTEGER NOT NULL,
        operator  TEXT    NOT NULL,
        UNIQUE (node, name)
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

    async def add_feed(self, record: FeedRecord) -> bool:
        """Keep a feed added at run time; False if its node already keeps one by that name."""
        return await self._worker.run(_add_feed, record)

    async def remove_feed(self, node: str, name: str) -> bool:
        """Forget a feed of ``node``; False if there was none."""
        return await self._worker.run(_remove_feed, node, name)

    async def feeds(self, node: str) -> list[FeedRecord]:
        """The feeds ``node`` runs, in the order they were added."""
        return await self._worker.run(_feeds, node)

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


_FEED_COLUMNS = "node, name, url, groups_json, stale_s, quality, added_ms, operator"


def _add_feed(db: sqlite3.Connection, r: FeedRecord) -> bool:
    cur = db.execute(
        f"INSERT OR IGNORE INTO feeds ({_FEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (r.node, r.name, r.url, json.dumps(r.groups), r.stale_s, r.quality, r.added_ms, r.operator),
    )
    return cur.rowcount > 0


def _remove_feed(db: sqlite3.Connection, node: str, name: str) -> bool:
    return db.execute("DELETE FROM feeds WHERE node = ? AND name = ?", (node, name)).rowcount > 0


def _feeds(db: sqlite3.Connection, node: str) -> list[FeedRecord]:
    rows = db.execute(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE node = ? ORDER BY seq", (node,)).fetchall()
    return [
        FeedRecord(node=r[0], name=r[1], url=r[2], groups=json.loads(r[3]), stale_s=r[4], quality=r[5],
                   added_ms=r[6], operator=r[7])
        for r in rows
    ]
