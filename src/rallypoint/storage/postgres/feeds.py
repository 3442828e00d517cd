"""PostgreSQL feed store: accepted track merges, shared by every node (``--storage postgresql://...``)."""

from __future__ import annotations

from rallypoint.storage.base.feeds import MergeRecord
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy, rows_affected

# pg_advisory_lock key for the feed store's migrations ("RP_FEEDS", stable forever).
LOCK_KEY = 0x52505F4645454453
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "merges",
        """
        CREATE TABLE feed_merges (
            seq             bigserial PRIMARY KEY,
            primary_kind    text NOT NULL,
            primary_value   text NOT NULL,
            secondary_kind  text NOT NULL,
            secondary_value text NOT NULL,
            accepted_ms     bigint NOT NULL,
            operator        text NOT NULL,
            UNIQUE (primary_kind, primary_value, secondary_kind, secondary_value)
        );
        """,
    ),
)
_COLUMNS = "primary_kind, primary_value, secondary_kind, secondary_value, accepted_ms, operator"


class PostgresFeedRecords:
    """``FeedRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="feeds",
                                  max_size=max_connections, retry=retry)

    async def add_merge(self, record: MergeRecord) -> bool:
        """Keep an accepted merge; False if that pair is already kept (a retry after a commit is harmless)."""
        r = record
        status = await self._pool.retrying(
            lambda conn: conn.execute(
                f"INSERT INTO feed_merges ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                r.primary_kind, r.primary_value, r.secondary_kind, r.secondary_value, r.accepted_ms, r.operator,
            ),
            name="add_merge",
        )
        return rows_affected(status) > 0

    async def merges(self) -> list[MergeRecord]:
        """Every accepted merge, oldest first."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(f"SELECT {_COLUMNS} FROM feed_merges ORDER BY seq"), name="merges"
        )
        return [
            MergeRecord(primary_kind=r[0], primary_value=r[1], secondary_kind=r[2], secondary_value=r[3],
                        accepted_ms=r[4], operator=r[5])
            for r in rows
        ]

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()
