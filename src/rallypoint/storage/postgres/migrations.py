"""Versioned, forward-only schema migrations, applied at start under an advisory lock.

``schema_migrations`` records every applied version. Several nodes may start at once against one
database: each takes ``pg_advisory_lock`` (a lock key per schema family) before looking, so exactly
one applies a pending migration and the others find it applied. A database migrated by a newer
Rallypoint (a version this one does not know) is refused rather than written with an older idea of
the schema.

A migration may require a database feature (``requires="postgis"``): a store's ``prepare`` step,
run under the same lock, says which features the database offers. A migration whose feature is
missing stays pending, without holding back the ones after it, and is applied at the first start
that finds the feature; so it may depend only on the unconditional migrations before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import msgspec

from rallypoint.errors import StorageError


class Migration(msgspec.Struct, frozen=True):
    """One step: its version (1, 2, ...), a short name, and the SQL that applies it."""

    version: int
    name: str
    sql: str
    requires: str | None = None


# Run under the migration lock before looking at the migrations; returns the features the database has.
Prepare = Callable[[asyncpg.Connection], Awaitable[frozenset[str]]]


async def migrate(
    db: asyncpg.Connection,
    migrations: tuple[Migration, ...],
    *,
    lock_key: int,
    what: str,
    prepare: Prepare | None = None,
) -> int:
    """Apply the pending ``migrations`` on ``db``; returns the schema version.

    Each migration runs in its own transaction together with its ``schema_migrations`` row.
    ``prepare`` (if given) runs first, under the lock, and names the features the database offers;
    migrations requiring another feature are left pending.
    """
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise ValueError("migrations must be numbered 1, 2, ... in order")
    await db.execute("SELECT pg_advisory_lock($1)", lock_key)
    try:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " family text NOT NULL, version integer NOT NULL, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (family, version))"
        )
        rows = await db.fetch(
            "SELECT version FROM schema_migrations WHERE family = $1", what
        )
        applied = {int(r["version"]) for r in rows}
        newer = sorted(v for v in applied if v > len(migrations))
        if newer:
            raise StorageError(
                f"{what} database schema version {newer[-1]} is newer than this Rallypoint supports "
                f"({len(migrations)}); upgrade Rallypoint"
            )
        features = await prepare(db) if prepare is not None else frozenset()
        for step in migrations:
            if step.version in applied or (step.requires is not None and step.requires not in features):
                continue
            async with db.transaction():
                await db.execute(step.sql)
                await db.execute(
                    "INSERT INTO schema_migrations (family, version, name) VALUES ($1, $2, $3)",
                    what, step.version, step.name,
                )
        return len(migrations)
    finally:
        await db.execute("SELECT pg_advisory_unlock($1)", lock_key)
