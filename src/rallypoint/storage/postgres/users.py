"""PostgreSQL user store: accounts shared by every node on one database (``--storage postgresql://...``).

* Names are unique without regard to case through ``name_key`` (``lower(name)``); the spelling given
  at creation is kept in ``name``.
* Groups are ``text[]`` (exact names, sorted when written).
* ``revision`` takes the next value of a sequence on every insert and administrative update, so
  ``stamp()`` (the greatest revision) tells every node that accounts changed, whichever node wrote.
* A failed login is counted by one ``UPDATE``, so failures from several nodes at once all count; it
  is never retried (it is not idempotent). Everything else is retried after a lost connection: an
  insert retried after it committed finds its own row and reports it as written.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from rallypoint.storage.base.users import UserRecord, check_user_changes
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy

# pg_advisory_lock key for the user store's migrations ("rallypoint users", stable forever).
LOCK_KEY = 0x52505F5553455253
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "users",
        """
        CREATE SEQUENCE users_revision;
        CREATE TABLE users (
            name_key        text PRIMARY KEY,
            name            text NOT NULL,
            role            text NOT NULL,
            groups_in       text[] NOT NULL,
            groups_out      text[] NOT NULL,
            password_hash   text,
            disabled        boolean NOT NULL DEFAULT false,
            created_ms      bigint NOT NULL,
            updated_ms      bigint NOT NULL,
            failed_logins   integer NOT NULL DEFAULT 0,
            locked_until_ms bigint,
            revision        bigint NOT NULL DEFAULT nextval('users_revision')
        );
        """,
    ),
)
_COLUMNS = (
    "name, role, groups_in, groups_out, password_hash, disabled, created_ms, updated_ms, failed_logins,"
    " locked_until_ms"
)


class PostgresUserRecords:
    """``UserRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="user",
                                  max_size=max_connections, retry=retry)

    async def insert(self, record: UserRecord) -> bool:
        """Insert ``record``; False if the name is taken (any case) by another account."""

        async def op(conn: asyncpg.Connection) -> bool:
            row = await conn.fetchrow(
                f"INSERT INTO users (name_key, {_COLUMNS}) VALUES (lower($1), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                f" ON CONFLICT (name_key) DO NOTHING RETURNING name",
                *_row(record),
            )
            if row is not None:
                return True
            # A retry of an insert that committed finds exactly the row it meant to write.
            existing = await _get(conn, record.name)
            return existing == record

        return await self._pool.retrying(op, name="insert")

    async def get(self, name: str) -> UserRecord | None:
        """The account called ``name`` (any case), or None."""
        return await self._pool.retrying(lambda conn: _get(conn, name), name="get")

    async def list(self) -> list[UserRecord]:
        """Every account, ordered by name (case-insensitively)."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(f"SELECT {_COLUMNS} FROM users ORDER BY name_key, name"), name="list"
        )
        return [_record(r) for r in rows]

    async def update(self, name: str, changes: dict[str, Any], *, now_ms: int) -> UserRecord | None:
        """Set the given fields and ``updated_ms``; the new record, or None if there is no such account."""
        check_user_changes(changes)
        values = {k: sorted(v) if k in ("groups_in", "groups_out") else v for k, v in changes.items()}
        # Column names come from the UPDATABLE_USER_FIELDS whitelist, never from callers' data.
        sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(values, start=3))
        sql = (
            f"UPDATE users SET {sets}{', ' if sets else ''}updated_ms = $2, revision = nextval('users_revision')"
            f" WHERE name_key = lower($1) RETURNING {_COLUMNS}"
        )

        async def op(conn: asyncpg.Connection) -> UserRecord | None:
            row = await conn.fetchrow(sql, name, now_ms, *values.values())
            return None if row is None else _record(row)

        return await self._pool.retrying(op, name="update")

    async def record_failure(
        self, name: str, *, now_ms: int, max_failures: int, lock_ms: int
    ) -> UserRecord | None:
        """Count one failed login (one statement, so concurrent failures all count); lock at the limit."""

        async def op(conn: asyncpg.Connection) -> UserRecord | None:
            row = await conn.fetchrow(
                "UPDATE users SET"
                " locked_until_ms = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until_ms END,"
                " failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END"
                f" WHERE name_key = lower($1) RETURNING {_COLUMNS}",
                name, max_failures, now_ms + lock_ms,
            )
            return None if row is None else _record(row)

        return await self._pool.once(op, name="record_failure")

    async def record_success(self, name: str, *, password_hash: str | None = None) -> None:
        """Reset the failure counter and any lock; optionally replace the hash (rehash on login)."""
        if password_hash is None:
            sql = "UPDATE users SET failed_logins = 0, locked_until_ms = NULL WHERE name_key = lower($1)"
            args: tuple[Any, ...] = (name,)
        else:
            sql = (
                "UPDATE users SET failed_logins = 0, locked_until_ms = NULL, password_hash = $2,"
                " revision = nextval('users_revision') WHERE name_key = lower($1)"
            )
            args = (name, password_hash)
        await self._pool.retrying(lambda conn: conn.execute(sql, *args), name="record_success")

    async def stamp(self) -> object:
        """The greatest account revision (grows with every insert and administrative update)."""
        return await self._pool.retrying(
            lambda conn: conn.fetchval("SELECT coalesce(max(revision), 0) FROM users"), name="stamp"
        )

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()


def _row(r: UserRecord) -> tuple[Any, ...]:
    return (r.name, r.role, sorted(r.groups_in), sorted(r.groups_out), r.password_hash, r.disabled, r.created_ms,
            r.updated_ms, r.failed_logins, r.locked_until_ms)


def _record(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        name=row["name"], role=row["role"], groups_in=frozenset(row["groups_in"]),
        groups_out=frozenset(row["groups_out"]), password_hash=row["password_hash"], disabled=row["disabled"],
        created_ms=row["created_ms"], updated_ms=row["updated_ms"], failed_logins=row["failed_logins"],
        locked_until_ms=row["locked_until_ms"],
    )


async def _get(conn: asyncpg.Connection, name: str) -> UserRecord | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE name_key = lower($1)", name)
    return None if row is None else _record(row)
