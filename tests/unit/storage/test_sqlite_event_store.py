"""SQLite-specific behaviour: durability across reopen, pragmas, schema version, threading."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rallypoint.errors import StorageError
from rallypoint.storage.base import HistoryQuery, StoredEvent
from rallypoint.storage.sqlite import schema
from rallypoint.storage.sqlite.events import SqliteEventStore

MakeEvent = Callable[..., StoredEvent]
T0 = 1_700_000_000_000


async def test_events_and_deletions_survive_a_restart(tmp_path: Path, ev: MakeEvent) -> None:
    path = tmp_path / "data" / "events.db"
    store = SqliteEventStore(path)
    await store.append(
        [ev("marker", type="b-m-p", stale_s=3600), ev("gone", type="b-m-p", stale_s=3600), ev("pli")]
    )
    await store.delete_uid("gone")
    await store.close()

    reopened = SqliteEventStore(path)
    try:
        latest = await reopened.latest(now_ms=T0 + 1, types_prefix=("b-m-p",))
        assert [e.uid for e in latest] == ["marker"]
        assert len(await reopened.query(HistoryQuery())) == 3
    finally:
        await reopened.close()


async def test_database_uses_wal_and_records_schema_version(tmp_path: Path, ev: MakeEvent) -> None:
    path = tmp_path / "events.db"
    store = SqliteEventStore(path)
    await store.append([ev()])
    await store.close()

    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        db.close()
    assert {"events_time", "events_uid_time", "events_type", "events_lat_lon"} <= indexes


async def test_refuses_a_database_from_a_newer_version(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    db.close()

    store = SqliteEventStore(path)
    with pytest.raises(StorageError, match="newer"):
        await store.query(HistoryQuery())
    await store.close()


async def test_closed_store_raises_storage_error(tmp_path: Path, ev: MakeEvent) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    await store.append([ev()])
    await store.close()

    with pytest.raises(StorageError, match="closed"):
        await store.append([ev()])


async def test_closing_an_unused_store_creates_no_file(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    await store.close()
    assert not (tmp_path / "events.db").exists()


async def test_sqlite_runs_off_the_event_loop_thread(tmp_path: Path, ev: MakeEvent, monkeypatch) -> None:
    threads: set[int] = set()
    real_connect = sqlite3.connect

    def recording_connect(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.add(threading.get_ident())
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recording_connect)
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        await store.append([ev()])
    finally:
        await store.close()

    assert threads and threading.get_ident() not in threads


async def test_concurrent_calls_keep_submission_order(tmp_path: Path, ev: MakeEvent) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        # Started together: the delete must see the append scheduled before it.
        await asyncio.gather(
            store.append([ev("m", type="b-m-p", stale_s=3600)]),
            store.delete_uid("m"),
        )
        assert await store.latest(now_ms=T0 + 1) == []
    finally:
        await store.close()


async def test_prune_works_in_chunks_larger_than_one_statement(tmp_path: Path, ev: MakeEvent) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        await store.append([ev(f"u{i}", time=T0 + i, stale_s=0.001) for i in range(12_000)])
        assert await store.prune(T0 + 11_000) == 11_000
        assert len(await store.query(HistoryQuery(limit=100_000))) == 1000
    finally:
        await store.close()


async def test_type_prefix_query_uses_the_type_index(tmp_path: Path, ev: MakeEvent) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    await store.append([ev()])
    await store.close()

    db = sqlite3.connect(tmp_path / "events.db")
    try:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM events e WHERE (e.type >= ? AND e.type < ?)", ("a-f", "a-g")
        ).fetchall()
    finally:
        db.close()
    assert any("events_type" in row[-1] for row in plan)


async def test_a_new_file_gets_the_larger_page_size_an_existing_one_keeps_its_own(
    tmp_path: Path, ev: MakeEvent
) -> None:
    from rallypoint.storage.sqlite.events import PAGE_SIZE

    fresh = tmp_path / "fresh.db"
    store = SqliteEventStore(fresh)
    await store.append([ev("a")])
    await store.close()
    with sqlite3.connect(fresh) as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    # A file made before (SQLite's default page size, already in WAL mode) is used as it is.
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE unrelated (x)")
    store = SqliteEventStore(old)
    try:
        await store.append([ev("b"), ev("c", time=T0 + 1)])
        assert [e.uid for e in await store.query(HistoryQuery())] == ["b", "c"]
    finally:
        await store.close()
    with sqlite3.connect(old) as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 4096


async def test_the_event_store_connection_keeps_a_larger_page_cache(tmp_path: Path, ev: MakeEvent) -> None:
    from rallypoint.storage.sqlite.events import CACHE_KIB

    store = SqliteEventStore(tmp_path / "cache.db")
    try:
        await store.append([ev("a")])
        size = await store._worker.run(lambda db: db.execute("PRAGMA cache_size").fetchone()[0])
    finally:
        await store.close()
    # Negative: KiB rather than pages, so the cache is the same whatever the file's page size.
    assert size == -CACHE_KIB
