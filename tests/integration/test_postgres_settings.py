"""PostgreSQL pool size and retry time from the storage URL (``?pool_max=``, ``?retry_s=``), on a real server."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncpg
import pytest

from rallypoint.errors import StorageError
from rallypoint.storage.base import HistoryQuery
from rallypoint.storage.factory import open_stores
from rallypoint.storage.postgres.events import PostgresEventStore
from tests.support.postgis import with_options
from tests.support.postgres import PostgresDatabase
from tests.support.stored import T0, make_event


async def _connections(database: PostgresDatabase) -> int:
    conn = await asyncpg.connect(database.admin_dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database.name
        )
    finally:
        await conn.close()
    return count


@pytest.mark.parametrize("pool_max", [1, 3])
async def test_pool_max_bounds_the_connections_a_store_opens(
    postgres_database: PostgresDatabase, pool_max: int,
) -> None:
    dsn = await postgres_database.fresh()
    await postgres_database.terminate_backends()
    store = PostgresEventStore(with_options(dsn, pool_max=str(pool_max)))
    try:
        await store.append([make_event(f"p-{i}", time=T0 + i) for i in range(20)])
        # Many queries at once: the pool opens up to pool_max connections and queues the rest.
        results = await asyncio.gather(*(store.query(HistoryQuery(uid=f"p-{i}")) for i in range(40)))
        assert [len(r) for r in results] == [1] * 20 + [0] * 20
        assert await _connections(postgres_database) == pool_max
    finally:
        await store.close()


async def test_every_store_accepts_the_settings_and_the_driver_never_sees_them(
    postgres_database: PostgresDatabase, tmp_path: Path,
) -> None:
    # A parameter reaching the driver would be sent to the server as a setting, which refuses it.
    url = with_options(await postgres_database.fresh(), pool_max="1", retry_s="1", postgis="off")
    stores = open_stores(url, tmp_path)
    mailbox = stores.mailbox()
    users = stores.users()
    events = stores.events()
    try:
        assert mailbox.load_state(T0).next_seq >= 1  # the mailbox's own start-up connection
        assert await users.list() == []
        await events.append([make_event("s-1")])
        assert [e.uid for e in await events.query(HistoryQuery())] == ["s-1"]
    finally:
        await asyncio.gather(mailbox.close(), users.close(), events.close())


@pytest.mark.parametrize(("retry_s", "retries"), [("0", 0), ("0.3", 3)])
async def test_retry_s_is_how_long_a_lost_database_is_retried(retry_s: str, retries: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: every connection is refused
        store = PostgresEventStore(f"postgresql://u@127.0.0.1:{port}/x?retry_s={retry_s}")
        try:
            with pytest.raises(StorageError, match="latest failed"):
                await store.latest(now_ms=T0)
            # 50 ms, 100 ms, 200 ms: the pauses add up to 0.3 s after three retries.
            assert store.retries == retries
        finally:
            await store.close()
