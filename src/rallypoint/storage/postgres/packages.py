"""PostgreSQL package store: data package descriptions shared by every node (``--storage postgresql://...``).

One row per upload of a content hash by one uploader (submitter and its write groups, a sorted
``text[]``); a repeated upload by the same uploader leaves the row as it is. The content itself stays
in the content-addressed blob directory (``storage.files``), which nodes share as a directory.
Every operation is retried after a lost connection: an ``add`` retried after it committed finds
exactly its own row and reports it as new.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from rallypoint.storage.base.packages import PackageRecord, check_package_changes
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy

# pg_advisory_lock key for the package store's migrations ("rallypoint packages", stable forever).
LOCK_KEY = 0x52505F5041434B41
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "packages",
        """
        CREATE TABLE packages (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            hash          text NOT NULL,
            uid           text NOT NULL,
            name          text NOT NULL,
            mime          text NOT NULL,
            size          bigint NOT NULL,
            keywords      text[] NOT NULL,
            tool          text NOT NULL,
            creator_uid   text NOT NULL,
            submitter     text NOT NULL,
            groups        text[] NOT NULL,
            submitted_ms  bigint NOT NULL,
            expiration_ms bigint,
            UNIQUE (hash, submitter, groups)
        );
        CREATE INDEX packages_tool ON packages (tool);
        CREATE INDEX packages_keywords ON packages USING gin (keywords);
        """,
    ),
)
_FIELDS = ("hash", "uid", "name", "mime", "size", "keywords", "tool", "creator_uid", "submitter", "groups",
           "submitted_ms", "expiration_ms")
_COLUMNS = "id, " + ", ".join(_FIELDS)


class PostgresPackageRecords:
    """``PackageRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="package",
                                  max_size=max_connections, retry=retry)

    async def add(self, record: PackageRecord) -> tuple[PackageRecord, bool]:
        """Insert ``record`` unless its uploader has a row for the hash; the stored row and whether it is new."""
        r = record
        values = (r.hash, r.uid, r.name, r.mime, r.size, list(r.keywords), r.tool, r.creator_uid, r.submitter,
                  sorted(r.groups), r.submitted_ms, r.expiration_ms)

        async def op(conn: asyncpg.Connection) -> tuple[PackageRecord, bool]:
            row = await conn.fetchrow(
                f"INSERT INTO packages ({', '.join(_FIELDS)}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
                f" $12) ON CONFLICT (hash, submitter, groups) DO NOTHING RETURNING {_COLUMNS}",
                *values,
            )
            if row is not None:
                return _record(row), True
            existing = _record(await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM packages WHERE hash = $1 AND submitter = $2 AND groups = $3",
                r.hash, r.submitter, sorted(r.groups),
            ))
            # A retry of an add that committed finds exactly the row it meant to write.
            mine = existing == PackageRecord(**{**_fields(r), "groups": frozenset(r.groups), "id": existing.id})
            return existing, mine

        return await self._pool.retrying(op, name="add")

    async def rows(self, digest: str) -> list[PackageRecord]:
        """Every upload row of ``digest``, oldest first."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(f"SELECT {_COLUMNS} FROM packages WHERE hash = $1 ORDER BY id", digest),
            name="rows",
        )
        return [_record(r) for r in rows]

    async def search(self, *, keyword: str | None = None, tool: str | None = None) -> list[PackageRecord]:
        """Rows carrying ``keyword`` and/or ``tool`` (None: any), oldest first."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                f"SELECT {_COLUMNS} FROM packages WHERE ($1::text IS NULL OR keywords @> ARRAY[$1::text])"
                " AND ($2::text IS NULL OR tool = $2) ORDER BY id",
                keyword, tool,
            ),
            name="search",
        )
        return [_record(r) for r in rows]

    async def update(self, row_id: int, **changes: Any) -> PackageRecord | None:
        """Set ``tool``, ``keywords`` or ``expiration_ms`` on one row; returns it, or None if absent."""
        check_package_changes(changes)
        values = {k: list(v) if k == "keywords" else v for k, v in changes.items()}
        # Column names come from the fixed allow-list checked above.
        sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(values, start=2))
        sql = (
            f"UPDATE packages SET {sets} WHERE id = $1 RETURNING {_COLUMNS}" if sets
            else f"SELECT {_COLUMNS} FROM packages WHERE id = $1"
        )
        row = await self._pool.retrying(lambda conn: conn.fetchrow(sql, row_id, *values.values()), name="update")
        return None if row is None else _record(row)

    async def delete(self, row_ids: list[int]) -> tuple[int, int]:
        """Remove the given rows; returns ``(rows removed, rows left for the same hashes)``."""

        async def op(conn: asyncpg.Connection) -> tuple[int, int]:
            async with conn.transaction():
                gone = await conn.fetch("DELETE FROM packages WHERE id = ANY($1::bigint[]) RETURNING hash", row_ids)
                hashes = sorted({r["hash"] for r in gone})
                left = await conn.fetchval("SELECT count(*) FROM packages WHERE hash = ANY($1::text[])", hashes)
                return len(gone), int(left)

        return await self._pool.retrying(op, name="delete")

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()


def _fields(r: PackageRecord) -> dict[str, Any]:
    return {name: getattr(r, name) for name in _FIELDS}


def _record(row: asyncpg.Record) -> PackageRecord:
    return PackageRecord(
        id=row["id"], hash=row["hash"], uid=row["uid"], name=row["name"], mime=row["mime"], size=row["size"],
        keywords=tuple(row["keywords"]), tool=row["tool"], creator_uid=row["creator_uid"],
        submitter=row["submitter"], groups=frozenset(row["groups"]), submitted_ms=row["submitted_ms"],
        expiration_ms=row["expiration_ms"],
    )
