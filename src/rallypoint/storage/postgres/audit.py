"""PostgreSQL audit store: one hash chain shared by every node (``--storage postgresql://...``).

* Appends are serialised by a transaction-level advisory lock taken before the chain head is read,
  so writers on any node chain correctly: each new row's ``prev_hash`` is the hash of the row before.
* The table is append-only: triggers abort any UPDATE, DELETE or TRUNCATE issued by hand.
* The anchor (newest ``seq`` and ``hash``) is a row of its own, written in the append's transaction;
  a tail cut off the chain (triggers dropped first) no longer matches it.
* An append carries an id; a retry after a lost connection finds the row its first attempt wrote
  instead of appending the entry twice.
"""

from __future__ import annotations

import uuid

import asyncpg

from rallypoint.storage.base.audit import Anchor, AuditRow, RowBuilder
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy

# pg_advisory_lock key for the audit store's migrations ("rallypoint audit", stable forever).
LOCK_KEY = 0x52505F4155444954
# pg_advisory_xact_lock key serialising appends to the chain ("rallypoint chain").
CHAIN_LOCK_KEY = 0x52505F434841494E
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "audit",
        """
        CREATE TABLE audit (
            seq       bigint PRIMARY KEY,
            ts_ms     bigint NOT NULL,
            actor     text NOT NULL,
            action    text NOT NULL,
            target    text NOT NULL,
            detail    text NOT NULL,
            prev_hash text NOT NULL,
            hash      text NOT NULL,
            append_id uuid NOT NULL UNIQUE
        );
        CREATE TABLE audit_anchor (
            only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            seq       bigint NOT NULL,
            hash      text NOT NULL
        );
        CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$;
        CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
            FOR EACH ROW EXECUTE FUNCTION audit_append_only();
        CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
            FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
        """,
    ),
)
_COLUMNS = "seq, ts_ms, actor, action, target, detail, prev_hash, hash"


class PostgresAuditRecords:
    """``AuditRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="audit",
                                  max_size=max_connections, retry=retry)

    async def append(self, build: RowBuilder) -> AuditRow:
        """Insert ``build(head_seq, head_hash)`` under the chain lock and move the anchor, in one transaction."""
        append_id = uuid.uuid4()

        async def op(conn: asyncpg.Connection) -> AuditRow:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK_KEY)
                done = await conn.fetchrow(f"SELECT {_COLUMNS} FROM audit WHERE append_id = $1", append_id)
                if done is not None:
                    return AuditRow(*done)
                head = await conn.fetchrow("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                row = build(0, None) if head is None else build(int(head["seq"]), str(head["hash"]))
                await conn.execute(
                    f"INSERT INTO audit ({_COLUMNS}, append_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    row.seq, row.ts_ms, row.actor, row.action, row.target, row.detail, row.prev_hash, row.hash,
                    append_id,
                )
                await conn.execute(
                    "INSERT INTO audit_anchor (seq, hash) VALUES ($1, $2)"
                    " ON CONFLICT (only_row) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    row.seq, row.hash,
                )
                return row

        return await self._pool.retrying(op, name="append")

    async def rows(self, *, since_seq: int = 0, limit: int = 1000) -> list[AuditRow]:
        """Rows with ``seq > since_seq`` in ``seq`` order, at most ``limit``."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                f"SELECT {_COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2", since_seq, limit
            ),
            name="rows",
        )
        return [AuditRow(*r) for r in rows]

    async def read_anchor(self) -> Anchor | None:
        """The anchor, or None before the first append."""
        row = await self._pool.retrying(
            lambda conn: conn.fetchrow("SELECT seq, hash FROM audit_anchor"), name="read_anchor"
        )
        return None if row is None else Anchor(seq=int(row["seq"]), hash=str(row["hash"]))

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()
