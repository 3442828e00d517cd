"""PostgreSQL video registry shared by every node (``--storage postgresql://...``).

Writes replace a whole document, so retrying one after a lost connection changes nothing.
"""

from __future__ import annotations

import msgspec

from rallypoint.model.video import VideoConnection
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy, rows_affected

# pg_advisory_lock key for the video store's migrations ("rallypoint video", stable forever).
LOCK_KEY = 0x52505F564944454F
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "video_connections",
        """
        CREATE TABLE video_connections (
            uid        text PRIMARY KEY,
            updated_ms bigint NOT NULL,
            doc        bytea NOT NULL
        );
        """,
    ),
)
_DECODER = msgspec.json.Decoder(VideoConnection)


class PostgresVideoRecords:
    """``VideoRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="video",
                                  max_size=max_connections, retry=retry)

    async def put(self, connection: VideoConnection) -> None:
        """Insert ``connection`` or replace the one with its uid."""
        doc = msgspec.json.encode(connection)
        await self._pool.retrying(
            lambda conn: conn.execute(
                "INSERT INTO video_connections (uid, updated_ms, doc) VALUES ($1, $2, $3)"
                " ON CONFLICT (uid) DO UPDATE SET updated_ms = excluded.updated_ms, doc = excluded.doc",
                connection.uid, connection.updated_ms, doc,
            ),
            name="put",
        )

    async def get(self, uid: str) -> VideoConnection | None:
        """The connection with this uid, or None."""
        row = await self._pool.retrying(
            lambda conn: conn.fetchrow("SELECT doc FROM video_connections WHERE uid = $1", uid), name="get"
        )
        return None if row is None else _DECODER.decode(row[0])

    async def all(self) -> list[VideoConnection]:
        """Every connection, by uid."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch("SELECT doc FROM video_connections ORDER BY uid"), name="all"
        )
        return [_DECODER.decode(r[0]) for r in rows]

    async def count(self) -> int:
        """How many connections are kept."""
        value = await self._pool.retrying(
            lambda conn: conn.fetchval("SELECT count(*) FROM video_connections"), name="count"
        )
        return int(value)

    async def delete(self, uid: str) -> bool:
        """Remove one connection; False if there was none."""
        status = await self._pool.retrying(
            lambda conn: conn.execute("DELETE FROM video_connections WHERE uid = $1", uid), name="delete"
        )
        return rows_affected(status) > 0

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()
