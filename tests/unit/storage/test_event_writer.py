"""BatchedEventWriter: batching, time-based flush, shutdown, overflow, loop responsiveness."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.errors import StorageError
from rallypoint.storage.base import HistoryQuery, StoredEvent
from rallypoint.storage.memory import MemoryEventStore
from rallypoint.storage.sqlite.events import SqliteEventStore
from rallypoint.storage.writer import BatchedEventWriter

MakeEvent = Callable[..., StoredEvent]
T0 = 1_700_000_000_000


class RecordingStore(MemoryEventStore):
    """Remembers the size of every batch it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def append(self, events: Sequence[StoredEvent]) -> None:
        self.batches.append(len(events))
        await super().append(events)


async def wait_until(predicate: Callable[[], bool], deadline_s: float = 10.0) -> None:
    """Yield to the loop until ``predicate`` holds, failing after ``deadline_s`` seconds."""
    async with asyncio.timeout(deadline_s):
        # The writer exposes counters, not events: poll them, bounded by the deadline.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def test_writes_in_batches_no_larger_than_max_batch(ev: MakeEvent) -> None:
    store = RecordingStore()
    writer = BatchedEventWriter(store, max_batch=100, max_delay_s=60)
    for i in range(250):
        assert writer.submit(ev(f"u{i}", time=T0 + i))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run())
        # Full batches go out without waiting for the (long) delay, and so does what was left
        # behind them: it has already waited while they were written.
        await wait_until(lambda: writer.statistics().written == 250)
        writer.stop()

    assert store.batches == [100, 100, 50]
    stats = writer.statistics()
    assert (stats.written, stats.pending, stats.batches, stats.dropped) == (250, 0, 3, 0)
    got = await store.query(HistoryQuery(limit=1000))
    assert [e.uid for e in got] == [f"u{i}" for i in range(250)]


async def test_a_small_batch_is_flushed_after_max_delay(ev: MakeEvent) -> None:
    store = RecordingStore()
    clock = ManualClock(now_ms=T0)
    writer = BatchedEventWriter(store, max_batch=1000, max_delay_s=0.02, clock=clock)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run())
        writer.submit(ev("one"))
        # Not stopped: only the delay can trigger this write.
        await wait_until(lambda: writer.statistics().written == 1)
        writer.stop()

    assert store.batches == [1]
    assert writer.statistics().last_flush_ms == T0


async def test_stop_flushes_everything_pending_before_run_returns(ev: MakeEvent) -> None:
    store = RecordingStore()
    writer = BatchedEventWriter(store, max_batch=10_000, max_delay_s=3600)

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(writer.run())
        for i in range(30):
            writer.submit(ev(f"u{i}"))
        writer.stop()

    assert task.done()
    assert len(await store.query(HistoryQuery())) == 30
    assert writer.statistics().pending == 0
    # After stop, submissions are refused and counted.
    assert writer.submit(ev("late")) is False
    assert writer.statistics().dropped == 1


async def test_flush_drains_pending_without_run(ev: MakeEvent) -> None:
    store = RecordingStore()
    writer = BatchedEventWriter(store, max_batch=4)
    for i in range(10):
        writer.submit(ev(f"u{i}"))

    await writer.flush()

    assert store.batches == [4, 4, 2]
    assert writer.statistics().written == 10


async def test_overflow_drops_newest_and_counts(ev: MakeEvent) -> None:
    store = RecordingStore()
    writer = BatchedEventWriter(store, max_pending=10)

    accepted = [writer.submit(ev(f"u{i}")) for i in range(15)]

    assert accepted == [True] * 10 + [False] * 5
    assert writer.statistics().dropped == 5
    await writer.flush()
    assert {e.uid for e in await store.query(HistoryQuery())} == {f"u{i}" for i in range(10)}


async def test_deletes_apply_in_submission_order(ev: MakeEvent) -> None:
    store = MemoryEventStore()
    writer = BatchedEventWriter(store)
    writer.submit(ev("m", type="b-m-p", time=T0, stale_s=3600))
    writer.submit_delete("m")
    writer.submit(ev("n", type="b-m-p", time=T0, stale_s=3600))

    await writer.flush()

    assert [e.uid for e in await store.latest(now_ms=T0 + 1)] == ["n"]


async def test_a_delete_in_a_later_batch_applies_after_the_rows_before_it_and_batches_stay_whole(
    ev: MakeEvent,
) -> None:
    store = RecordingStore()
    writer = BatchedEventWriter(store, max_batch=3, max_delay_s=60)
    for i in range(4):  # the delete is the fifth item: in the second batch
        writer.submit(ev(f"u{i}", type="b-m-p", time=T0 + i, stale_s=3600))
    writer.submit_delete("u3")
    writer.submit(ev("u4", type="b-m-p", time=T0 + 4, stale_s=3600))
    await writer.flush()
    # Split around the delete only: u0-u2, then u3, the delete, then u4.
    assert store.batches == [3, 1, 1]
    assert [e.uid for e in await store.latest(now_ms=T0 + 5)] == ["u0", "u1", "u2", "u4"]
    # With no delete left queued, a batch goes to the store whole again.
    for i in range(5, 8):
        writer.submit(ev(f"u{i}", type="b-m-p", time=T0 + i, stale_s=3600))
    await writer.flush()
    assert store.batches == [3, 1, 1, 3]


async def test_a_failing_store_is_counted_and_does_not_stop_the_writer(ev: MakeEvent) -> None:
    class FailOnce(MemoryEventStore):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        async def append(self, events: Sequence[StoredEvent]) -> None:
            self.calls += 1
            if self.calls == 1:
                raise StorageError("disk full")
            await super().append(events)

    store = FailOnce()
    writer = BatchedEventWriter(store, max_batch=2)
    for i in range(4):
        writer.submit(ev(f"u{i}"))

    await writer.flush()

    stats = writer.statistics()
    assert (stats.failed, stats.written) == (2, 2)
    assert {e.uid for e in await store.query(HistoryQuery())} == {"u2", "u3"}


async def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        BatchedEventWriter(MemoryEventStore(), max_batch=0)


async def test_event_loop_keeps_running_during_a_large_sqlite_flush(tmp_path: Path, ev: MakeEvent) -> None:
    class Watched(SqliteEventStore):
        """Flags while an append is in progress."""

        in_append = False

        async def append(self, events: Sequence[StoredEvent]) -> None:
            self.in_append = True
            try:
                await super().append(events)
            finally:
                self.in_append = False

    store = Watched(tmp_path / "events.db")
    writer = BatchedEventWriter(store, max_batch=50_000, max_delay_s=3600)
    for i in range(50_000):
        writer.submit(ev(f"u{i % 500}", time=T0 + i))
    ticks_during_append = 0

    async def other_work() -> None:
        # Another task on the same loop: counts how often it ran while the batch was being written.
        nonlocal ticks_during_append
        while writer.statistics().written < 50_000:
            if store.in_append:
                ticks_during_append += 1
            await asyncio.sleep(0)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(writer.run())
            tg.create_task(other_work())
            writer.stop()
    finally:
        await store.close()

    assert writer.statistics().written == 50_000
    # Had SQLite run on the loop, the append would never yield and this would stay 0.
    assert ticks_during_append > 10
