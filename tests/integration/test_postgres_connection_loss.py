"""PostgreSQL connections killed in the middle of writes: every acknowledged append is stored once."""

from __future__ import annotations

import asyncio

from rallypoint.storage.base import HistoryQuery
from rallypoint.storage.postgres.events import PostgresEventStore
from rallypoint.storage.postgres.pool import RetryPolicy
from tests.support.postgres import PostgresDatabase
from tests.support.stored import T0, make_event

BATCHES = 40
PER_BATCH = 50


async def test_appends_survive_terminated_backends_without_loss_or_duplicates(
    postgres_database: PostgresDatabase,
) -> None:
    store = PostgresEventStore(await postgres_database.fresh(), retry=RetryPolicy(attempts=20, first_s=0.01))
    acked: list[int] = []
    progressed = asyncio.Event()
    done = False
    killed = 0

    async def write() -> None:
        nonlocal done
        try:
            for b in range(BATCHES):
                rows = [make_event(f"k-{b}-{i}", time=T0 + b * PER_BATCH + i) for i in range(PER_BATCH)]
                await store.append(rows)
                acked.append(b)
                progressed.set()
        finally:
            done = True
            progressed.set()

    async def kill() -> None:
        nonlocal killed
        # After every acknowledged batch, kill whatever connections the store holds (in use or idle),
        # as a database failover would.
        while not done:
            await progressed.wait()
            progressed.clear()
            killed += await postgres_database.terminate_backends()

    try:
        await asyncio.gather(write(), kill())
        assert acked == list(range(BATCHES))
        rows = await store.query(HistoryQuery(limit=BATCHES * PER_BATCH + 10))
        uids = [r.uid for r in rows]
        assert len(uids) == len(set(uids)) == BATCHES * PER_BATCH
        assert killed > 0 and store.retries > 0
        # Reads and marks recover the same way.
        killed += await postgres_database.terminate_backends()
        await store.delete_uid("k-0-0")
        assert len(await store.latest(now_ms=T0)) == BATCHES * PER_BATCH - 1
    finally:
        await store.close()
