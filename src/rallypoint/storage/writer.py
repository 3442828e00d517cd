"""Batched, bounded persistence off the routing hot path.

The router calls ``submit`` (synchronous, O(1), never awaits); one task runs ``run`` and writes
batches of up to ``max_batch`` events, at the latest ``max_delay_s`` after the oldest pending event
arrived. Overflow policy: **drop newest** — when ``max_pending`` items are waiting, ``submit``
refuses the new event and counts it in ``dropped``; routing is never slowed by a slow disk.

Deletions (``submit_delete``) travel through the same queue so they apply after every event
submitted before them.

Call ``submit``/``submit_delete``/``stop`` from the event loop's thread only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import cast

import msgspec

from rallypoint.clock import Clock, SystemClock
from rallypoint.errors import StorageError
from rallypoint.storage.base import EventStore, StoredEvent

log = logging.getLogger(__name__)


class WriterStatistics(msgspec.Struct, frozen=True):
    """A snapshot of the writer's counters.

    ``dropped``: refused by ``submit`` (queue full or writer stopped). ``failed``: events in batches
    the store rejected (logged). ``last_flush_ms``: wall-clock time of the last completed batch.
    """

    pending: int
    written: int
    dropped: int
    batches: int
    last_flush_ms: int | None
    failed: int = 0


class _Delete(msgspec.Struct, frozen=True, gc=False):
    uid: str


class BatchedEventWriter:
    """Queues events for an ``EventStore`` and writes them in batches from ``run()``."""

    def __init__(
        self,
        store: EventStore,
        *,
        max_batch: int = 2000,
        max_delay_s: float = 0.2,
        max_pending: int = 200_000,
        clock: Clock | None = None,
    ) -> None:
        if max_batch < 1 or max_pending < 1 or max_delay_s < 0:
            raise ValueError("max_batch and max_pending must be >= 1 and max_delay_s >= 0")
        self._store = store
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._max_pending = max_pending
        self._clock: Clock = clock or SystemClock()
        self._pending: deque[StoredEvent | _Delete] = deque()
        # Deletions among ``_pending``: without any, a batch is taken whole, without looking at each item.
        self._deletes_pending = 0
        # Loop time at which the oldest pending item arrived; defines the flush deadline.
        self._oldest_at = 0.0
        self._wakeup = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._stopping = False
        self._written = 0
        self._dropped = 0
        self._failed = 0
        self._batches = 0
        self._last_flush_ms: int | None = None

    def submit(self, event: StoredEvent) -> bool:
        """Queue ``event`` for writing; False (and counted) if the queue is full or stopped."""
        return self._enqueue(event)

    def submit_delete(self, uid: str) -> bool:
        """Queue ``EventStore.delete_uid(uid)``, ordered after everything submitted before it."""
        queued = self._enqueue(_Delete(uid))
        if queued:
            self._deletes_pending += 1
        return queued

    def stop(self) -> None:
        """Refuse new submissions; ``run()`` returns once everything pending is written."""
        self._stopping = True
        self._wakeup.set()

    def statistics(self) -> WriterStatistics:
        """Current counters."""
        return WriterStatistics(
            pending=len(self._pending),
            written=self._written,
            dropped=self._dropped,
            batches=self._batches,
            last_flush_ms=self._last_flush_ms,
            failed=self._failed,
        )

    async def run(self) -> None:
        """Write batches until ``stop()``; the final pending items are flushed before returning."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = self._oldest_at + self._max_delay_s
            while len(self._pending) < self._max_batch and not self._stopping:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=remaining)
                except TimeoutError:
                    break
            await self._write_batch()

    async def flush(self) -> None:
        """Write everything pending now (including a batch already in flight) before returning."""
        while self._pending:
            await self._write_batch()
        # A batch taken by run() may still be in the store; wait for it.
        async with self._write_lock:
            pass

    def _enqueue(self, item: StoredEvent | _Delete) -> bool:
        if self._stopping or len(self._pending) >= self._max_pending:
            self._dropped += 1
            return False
        if not self._pending:
            self._oldest_at = asyncio.get_running_loop().time()
            self._pending.append(item)
            self._wakeup.set()
            return True
        self._pending.append(item)
        if len(self._pending) >= self._max_batch:
            self._wakeup.set()
        return True

    async def _write_batch(self) -> None:
        async with self._write_lock:
            if not self._pending:
                return
            pending = self._pending
            take = min(self._max_batch, len(pending))
            if take == len(pending):
                items = list(pending)
                pending.clear()
            else:
                items = [pending.popleft() for _ in range(take)]
                # What remains has waited since before this batch; flush it promptly.
                self._oldest_at = asyncio.get_running_loop().time() - self._max_delay_s
            if not self._deletes_pending:
                await self._append(cast(list[StoredEvent], items))
            else:
                await self._write_with_deletes(items)
            self._batches += 1
            self._last_flush_ms = self._clock.now_ms()

    async def _write_with_deletes(self, items: list[StoredEvent | _Delete]) -> None:
        """Appends and deletions in submission order: each deletion after the rows queued before it."""
        run: list[StoredEvent] = []
        for item in items:
            if isinstance(item, _Delete):
                self._deletes_pending -= 1
                await self._append(run)
                run = []
                await self._delete(item.uid)
            else:
                run.append(item)
        await self._append(run)

    async def _append(self, events: list[StoredEvent]) -> None:
        if not events:
            return
        try:
            await self._store.append(events)
        except StorageError:
            # A full or broken disk must not take routing down: count, log, keep going.
            self._failed += len(events)
            log.exception("event store rejected a batch of %d events", len(events))
            return
        self._written += len(events)

    async def _delete(self, uid: str) -> None:
        try:
            await self._store.delete_uid(uid)
        except StorageError:
            log.exception("event store could not delete uid %r", uid)
