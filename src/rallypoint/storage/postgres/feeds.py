"""PostgreSQL feed store: accepted track merges and feeds added at run time, shared by every node."""

from __future__ import annotations

from rallypoint.storage.base.feeds import FeedRecord, MergeRecord
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
    Migration(
        2,
        "feeds",
        """
        CREATE TABLE feed_definitions (
            seq       bigserial PRIMARY KEY,
            node      text NOT NULL,
            name      text NOT NULL,
            url       text NOT NULL,
            groups    text[] NOT NULL,
            stale_s   double precision,
            quality   double precision,
            added_ms  bigint NOT NULL,
            operator  text NOT NULL,
            UNIQUE (node, name)
        );
        """,
    ),
)
_FEED_COLUMNS = "node, name, url, groups, stale_s, quality, added_ms, operator"
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

    async def add_feed(self, record: FeedRecord) -> bool:
        """Keep a feed added at run time; False if its node already keeps one by that name."""
        r = record
        status = await self._pool.retrying(
            lambda conn: conn.execute(
                f"INSERT INTO feed_definitions ({_FEED_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT DO NOTHING",
                r.node, r.name, r.url, list(r.groups), r.stale_s, r.quality, r.added_ms, r.operator,
            ),
            name="add_feed",
        )
        return rows_affected(status) > 0

    async def remove_feed(self, node: str, name: str) -> bool:
        """Forget a feed of ``node``; False if there was none."""
        status = await self._pool.retrying(
            lambda conn: conn.execute("DELETE FROM feed_definitions WHERE node = $1 AND name = $2", node, name),
            name="remove_feed",
        )
        return rows_affected(status) > 0

    async def feeds(self, node: str) -> list[FeedRecord]:
        """The feeds ``node`` runs, in the order they were added."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(f"SELECT {_FEED_COLUMNS} FROM feed_definitions WHERE node = $1 ORDER BY seq",
                                    node),
            name="feeds",
        )
        return [
            FeedRecord(node=r[0], name=r[1], url=r[2], groups=list(r[3]), stale_s=r[4], quality=r[5],
                       added_ms=r[6], operator=r[7])
            for r in rows
        ]

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()
