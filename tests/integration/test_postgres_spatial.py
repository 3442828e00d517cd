"""The history's area index on PostgreSQL: PostGIS when present, the box index otherwise, same answers."""

from __future__ import annotations

import json
import random
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from rallypoint.errors import StorageError
from rallypoint.storage.base import HistoryQuery, StoredEvent, in_bbox
from rallypoint.storage.postgres import schema
from rallypoint.storage.postgres.events import PostgresEventStore, _where
from rallypoint.storage.postgres.migrations import migrate
from rallypoint.storage.postgres.spatial import AreaIndex
from tests.support.postgis import with_options
from tests.support.postgres import PostgresDatabase
from tests.support.stored import T0, make_event

BOXES = [(10.0, 50.0, 11.0, 51.0), (179.0, -1.0, -179.0, 1.0), (-1.0, -1.0, 1.0, 1.0), (-180.0, -90.0, 180.0, 90.0)]


def _spread(count: int, seed: int = 7) -> list[StoredEvent]:
    """Rows over the whole globe, a cluster near the antimeridian, box edges, and no-fix rows (0,0)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        match i % 5:
            case 0:
                lat, lon = rng.uniform(-1.5, 1.5), rng.choice([rng.uniform(178, 180), rng.uniform(-180, -178)])
            case 1:
                lat, lon = rng.uniform(49.5, 51.5), rng.uniform(9.5, 11.5)
            case 2:
                lat, lon = rng.choice([(50.0, 10.0), (51.0, 11.0), (0.0, 0.0), (1.0, 179.0)])
            case _:
                lat, lon = rng.uniform(-90, 90), rng.uniform(-180, 180)
        rows.append(make_event(f"u-{i}", time=T0 + i, lat=lat, lon=lon))
    return rows


async def _columns(dsn: str) -> tuple[set[str], set[str], list[int]]:
    conn = await asyncpg.connect(dsn.split("?")[0])
    try:
        columns = {r[0] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'events'"
        )}
        indexes = {r[0] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'events'")}
        versions = [r[0] for r in await conn.fetch(
            "SELECT version FROM schema_migrations WHERE family = 'event' ORDER BY version"
        )]
    finally:
        await conn.close()
    return columns, indexes, versions


async def _expect_same_areas(store: PostgresEventStore, rows: list[StoredEvent]) -> None:
    for box in BOXES:
        got = await store.query(HistoryQuery(bbox=box, limit=len(rows) + 1))
        want = [r.uid for r in rows if not (r.lat == 0 and r.lon == 0) and in_bbox(r.lon, r.lat, box)]
        assert [e.uid for e in got] == want, box


async def _plan_indexes(dsn: str, area: AreaIndex, box: tuple[float, float, float, float]) -> str:
    """The plan's text for an area query when sequential scans are ruled out."""
    where, params = _where(HistoryQuery(bbox=box), area)
    conn = await asyncpg.connect(dsn.split("?")[0])
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) SELECT e.id FROM events e WHERE {where}", *params)
    finally:
        await conn.close()
    return json.dumps(plan)


async def test_postgis_answers_areas_through_the_geometry_index(postgis_database: PostgresDatabase) -> None:
    dsn = with_options(await postgis_database.fresh(), postgis="require")
    store = PostgresEventStore(dsn)
    rows = _spread(600)
    try:
        await store.append(rows)
        assert store.area_index == "postgis"
        await _expect_same_areas(store, rows)
    finally:
        await store.close()
    columns, indexes, versions = await _columns(dsn)
    assert "geom" in columns and "events_geom" in indexes and "events_position" not in indexes
    assert versions == [1, 2, 3]
    for box in BOXES[:2]:
        assert "events_geom" in await _plan_indexes(dsn, "postgis", box)


async def test_postgis_off_keeps_the_box_index(postgis_database: PostgresDatabase) -> None:
    # The extension is installed, but the store is told not to convert: the plain path, same answers.
    dsn = with_options(await postgis_database.fresh(), postgis="off")
    store = PostgresEventStore(dsn)
    rows = _spread(300)
    try:
        await store.append(rows)
        assert store.area_index == "bbox"
        await _expect_same_areas(store, rows)
    finally:
        await store.close()
    columns, indexes, versions = await _columns(dsn)
    assert "geom" not in columns and "events_position" in indexes
    assert versions == [1, 3]  # migration 2 waits for PostGIS
    assert "events_position" in await _plan_indexes(dsn, "bbox", BOXES[0])


async def test_a_database_migrated_without_postgis_is_converted_when_it_appears(
    postgis_database: PostgresDatabase,
) -> None:
    dsn = await postgis_database.fresh()
    # A database made by a Rallypoint that knew only migration 1.
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, schema.MIGRATIONS[:1], lock_key=schema.LOCK_KEY, what="event")
    finally:
        await conn.close()
    rows = _spread(300)
    before = PostgresEventStore(with_options(dsn, postgis="off"))
    try:
        await before.append(rows[:200])
        assert before.area_index == "bbox"
    finally:
        await before.close()
    assert (await _columns(dsn))[2] == [1, 3]

    after = PostgresEventStore(dsn)  # postgis=auto: the extension is there, so migration 2 runs
    try:
        await after.append(rows[200:])
        assert after.area_index == "postgis"
        await _expect_same_areas(after, rows)  # rows written before the conversion have their geometry too
    finally:
        await after.close()
    columns, indexes, versions = await _columns(dsn)
    assert versions == [1, 2, 3] and "geom" in columns and "events_geom" in indexes


async def test_auto_without_the_extension_uses_the_box_index(postgres_database: PostgresDatabase) -> None:
    dsn = await postgres_database.fresh()
    store = PostgresEventStore(dsn)
    rows = _spread(100)
    try:
        await store.append(rows)
        assert store.area_index == "bbox"
        await _expect_same_areas(store, rows)
    finally:
        await store.close()
    assert (await _columns(dsn))[2] == [1, 3]


async def test_require_creates_the_extension_when_the_account_may(postgres_database: PostgresDatabase) -> None:
    dsn = await postgres_database.fresh()
    conn = await asyncpg.connect(dsn)
    try:
        available = await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
        superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    finally:
        await conn.close()
    if not (available and superuser):
        pytest.skip("needs PostGIS on the server and a superuser test account")
    store = PostgresEventStore(with_options(dsn, postgis="require"))
    rows = _spread(100)
    try:
        await store.append(rows)
        assert store.area_index == "postgis"
        await _expect_same_areas(store, rows)
    finally:
        await store.close()
    await postgres_database.fresh()  # drops the extension again (it was created in public)


async def test_require_without_permission_is_a_clear_storage_error(postgres_database: PostgresDatabase) -> None:
    dsn = await postgres_database.fresh()
    role = f"rallypoint_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"):
            pytest.skip("the PostgreSQL server has no PostGIS extension")
        await admin.execute(f'CREATE ROLE "{role}" LOGIN; GRANT ALL ON SCHEMA public TO "{role}"')
        try:
            parts = urlsplit(dsn)
            user_dsn = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rsplit('@', 1)[-1]}"))
            store = PostgresEventStore(with_options(user_dsn, postgis="require"))
            try:
                with pytest.raises(StorageError, match="may not create the postgis extension"):
                    await store.latest(now_ms=T0)
            finally:
                await store.close()
        finally:
            await admin.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')
    finally:
        await admin.close()
