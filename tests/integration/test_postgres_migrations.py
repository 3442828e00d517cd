"""PostgreSQL schema migrations: applied once however many nodes start together; newer schemas refused."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from rallypoint.errors import StorageError
from rallypoint.storage.postgres import schema
from rallypoint.storage.postgres.events import PostgresEventStore
from tests.support.postgres import PostgresDatabase
from tests.support.stored import T0, make_event


async def test_nodes_starting_together_migrate_once_and_share_the_history(
    postgres_database: PostgresDatabase,
) -> None:
    dsn = await postgres_database.fresh()
    stores = [PostgresEventStore(dsn) for _ in range(4)]
    try:
        # Every store opens its pool and migrates at once; the advisory lock serialises them.
        await asyncio.gather(*(s.append([make_event(f"n-{i}", time=T0 + i)]) for i, s in enumerate(stores)))
        for store in stores:
            assert len(await store.latest(now_ms=T0)) == 4
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT family, version, name FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    # Without PostGIS in the database, the migrations that need it wait (storage.postgres.spatial).
    unconditional = [m for m in schema.MIGRATIONS if m.requires is None]
    assert [tuple(r) for r in rows] == [("event", m.version, m.name) for m in unconditional]


async def test_a_database_from_a_newer_version_is_refused(postgres_database: PostgresDatabase) -> None:
    dsn = await postgres_database.fresh()
    first = PostgresEventStore(dsn)
    await first.latest(now_ms=T0)
    await first.close()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO schema_migrations (family, version, name) VALUES ('event', 99, 'future')")
    finally:
        await conn.close()

    store = PostgresEventStore(dsn)
    try:
        with pytest.raises(StorageError, match="newer than this Rallypoint supports"):
            await store.latest(now_ms=T0)
    finally:
        await store.close()
