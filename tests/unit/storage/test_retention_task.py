"""run_retention: periodic pruning with an event-based stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rallypoint.clock import ManualClock
from rallypoint.errors import StorageError
from rallypoint.storage.base import HistoryQuery, StoredEvent
from rallypoint.storage.memory import MemoryEventStore
from rallypoint.storage.retention import run_retention

MakeEvent = Callable[..., StoredEvent]
T0 = 1_700_000_000_000
HOUR_MS = 3_600_000


class CountingStore(MemoryEventStore):
    def __init__(self, fail_first: bool = False) -> None:
        super().__init__()
        self.cutoffs: list[int] = []
        self.fail_first = fail_first
        self.pruned = asyncio.Event()

    async def prune(self, older_than_ms: int) -> int:
        self.cutoffs.append(older_than_ms)
        self.pruned.set()
        if self.fail_first and len(self.cutoffs) == 1:
            raise StorageError("locked")
        return await super().prune(older_than_ms)


async def test_prunes_with_cutoff_from_the_clock_and_stops_on_event(ev: MakeEvent) -> None:
    clock = ManualClock(now_ms=T0 + 48 * HOUR_MS)
    store = CountingStore()
    await store.append([ev("old", time=T0, stale_s=60), ev("new", time=T0 + 47 * HOUR_MS, stale_s=60)])
    stop = asyncio.Event()

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(
            run_retention(store, retention_s=24 * 3600, clock=clock, interval_s=3600, stop=stop)
        )
        await store.pruned.wait()
        stop.set()

    assert task.result() == 1
    assert store.cutoffs == [T0 + 24 * HOUR_MS]
    assert [e.uid for e in await store.query(HistoryQuery())] == ["new"]


async def test_keeps_running_after_a_failed_prune(ev: MakeEvent) -> None:
    clock = ManualClock(now_ms=T0)
    store = CountingStore(fail_first=True)
    stop = asyncio.Event()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_retention(store, retention_s=60, clock=clock, interval_s=0.001, stop=stop))
        async with asyncio.timeout(10):
            while len(store.cutoffs) < 2:
                store.pruned.clear()
                await store.pruned.wait()
        stop.set()

    assert len(store.cutoffs) >= 2
