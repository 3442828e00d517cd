"""Coalesce socket writes: one write per receiver per event-loop iteration instead of one per event.

When many events arrive in one loop iteration (many senders, or several events in one read), every
receiver would otherwise cost one ``send()`` system call per event. Deliveries are appended to the
receiver's pending list and flushed together by a single callback scheduled for the end of the
current iteration, so they add no waiting, only fewer system calls.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Flushable(Protocol):
    def flush_pending(self) -> None: ...


class WriteCoalescer:
    """Schedules at most one flush per loop iteration for all receivers with pending bytes."""

    def __init__(self) -> None:
        self._dirty: list[Flushable] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.flushes = 0

    def mark(self, receiver: Flushable) -> None:
        """Remember a receiver that has pending bytes (call once per receiver per iteration)."""
        self._dirty.append(receiver)
        if not self._scheduled:
            self._scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        self.flushes += 1
        for receiver in dirty:
            receiver.flush_pending()
