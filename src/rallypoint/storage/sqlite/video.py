"""SQLite rows behind the video registry (``DATA_DIR/video.db``): one JSON document per connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from rallypoint.model.video import VideoConnection
from rallypoint.storage.sqlite.worker import SqliteWorker

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE video_connections (
        uid        TEXT    NOT NULL PRIMARY KEY,
        updated_ms INTEGER NOT NULL,
        doc        BLOB    NOT NULL
    );
    """,
)
_DECODER = msgspec.json.Decoder(VideoConnection)


class SqliteVideoRecords:
    """Video connections in a SQLite file; one worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="video")

    async def put(self, connection: VideoConnection) -> None:
        """Insert ``connection`` or replace the one with its uid."""
        await self._worker.run(_put, connection.uid, connection.updated_ms, msgspec.json.encode(connection))

    async def get(self, uid: str) -> VideoConnection | None:
        """The connection with this uid, or None."""
        return await self._worker.run(_get, uid)

    async def all(self) -> list[VideoConnection]:
        """Every connection, by uid."""
        return await self._worker.run(_all)

    async def count(self) -> int:
        """How many connections are kept."""
        return await self._worker.run(_count)

    async def delete(self, uid: str) -> bool:
        """Remove one connection; False if there was none."""
        return await self._worker.run(_delete, uid)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _put(db: sqlite3.Connection, uid: str, updated_ms: int, doc: bytes) -> None:
    db.execute(
        "INSERT INTO video_connections (uid, updated_ms, doc) VALUES (?, ?, ?)"
        " ON CONFLICT (uid) DO UPDATE SET updated_ms = excluded.updated_ms, doc = excluded.doc",
        (uid, updated_ms, doc),
    )


def _get(db: sqlite3.Connection, uid: str) -> VideoConnection | None:
    row = db.execute("SELECT doc FROM video_connections WHERE uid = ?", (uid,)).fetchone()
    return None if row is None else _DECODER.decode(row[0])


def _all(db: sqlite3.Connection) -> list[VideoConnection]:
    return [_DECODER.decode(r[0]) for r in db.execute("SELECT doc FROM video_connections ORDER BY uid")]


def _count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM video_connections").fetchone()[0])


def _delete(db: sqlite3.Connection, uid: str) -> bool:
    return db.execute("DELETE FROM video_connections WHERE uid = ?", (uid,)).rowcount > 0
