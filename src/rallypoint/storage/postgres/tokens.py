"""PostgreSQL token store: native API tokens shared by every node (``--storage postgresql://...``).

Only digests are kept. ``principal_key`` (``lower(principal)``) lets a principal's tokens be found
whatever the case. Inserts and pruning are retried after a lost connection (an insert retried after
it committed changes nothing); revocations run once, since they report how many tokens they ended.
"""

from __future__ import annotations

from rallypoint.storage.base.tokens import TokenRecord
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy, rows_affected

# pg_advisory_lock key for the token store's migrations ("rallypoint tokens", stable forever).
LOCK_KEY = 0x52505F544F4B454E
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "tokens",
        """
        CREATE TABLE tokens (
            digest        bytea PRIMARY KEY,
            principal     text NOT NULL,
            principal_key text NOT NULL,
            issued_ms     bigint NOT NULL,
            expires_ms    bigint NOT NULL,
            revoked_ms    bigint,
            session       text
        );
        CREATE INDEX tokens_principal ON tokens (principal_key);
        CREATE INDEX tokens_session ON tokens (session);
        CREATE INDEX tokens_expires ON tokens (expires_ms);
        """,
    ),
)
_COLUMNS = "digest, principal, issued_ms, expires_ms, revoked_ms, session"


class PostgresTokenRecords:
    """``TokenRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="token",
                                  max_size=max_connections, retry=retry)

    async def insert(self, record: TokenRecord) -> None:
        """Store a newly issued token."""
        r = record
        await self._pool.retrying(
            lambda conn: conn.execute(
                "INSERT INTO tokens (digest, principal, principal_key, issued_ms, expires_ms, revoked_ms, session)"
                " VALUES ($1, $2, lower($2), $3, $4, $5, $6) ON CONFLICT (digest) DO NOTHING",
                r.digest, r.principal, r.issued_ms, r.expires_ms, r.revoked_ms, r.session,
            ),
            name="insert",
        )

    async def get(self, digest: bytes) -> TokenRecord | None:
        """The token with this digest, revoked or not, or None."""
        row = await self._pool.retrying(
            lambda conn: conn.fetchrow(f"SELECT {_COLUMNS} FROM tokens WHERE digest = $1", digest), name="get"
        )
        return None if row is None else TokenRecord(*row)

    async def revoke(self, digest: bytes, *, now_ms: int) -> bool:
        """Mark one live token revoked; False if it is unknown or already revoked."""
        status = await self._pool.once(
            lambda conn: conn.execute(
                "UPDATE tokens SET revoked_ms = $2 WHERE digest = $1 AND revoked_ms IS NULL", digest, now_ms
            ),
            name="revoke",
        )
        return rows_affected(status) > 0

    async def revoke_session(self, session: str, *, now_ms: int) -> int:
        """Revoke every unexpired, unrevoked token of one login session; returns how many."""
        status = await self._pool.once(
            lambda conn: conn.execute(
                "UPDATE tokens SET revoked_ms = $2 WHERE session = $1 AND revoked_ms IS NULL AND expires_ms > $2",
                session, now_ms,
            ),
            name="revoke_session",
        )
        return rows_affected(status)

    async def revoke_principal(self, principal: str, *, now_ms: int) -> int:
        """Revoke every unexpired, unrevoked token of ``principal`` (any case); returns how many."""
        status = await self._pool.once(
            lambda conn: conn.execute(
                "UPDATE tokens SET revoked_ms = $2"
                " WHERE principal_key = lower($1) AND revoked_ms IS NULL AND expires_ms > $2",
                principal, now_ms,
            ),
            name="revoke_principal",
        )
        return rows_affected(status)

    async def prune(self, *, now_ms: int) -> int:
        """Delete tokens with ``expires_ms <= now_ms``; returns how many."""
        status = await self._pool.retrying(
            lambda conn: conn.execute("DELETE FROM tokens WHERE expires_ms <= $1", now_ms), name="prune"
        )
        return rows_affected(status)

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()
