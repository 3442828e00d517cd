"""Per-receiver outbox: bounded, by priority, latest-position-wins per uid, stale items dropped.

The outbox only holds what the socket could not take yet. While the receiver keeps up, envelopes
go straight to the wire and the outbox stays empty; once it falls behind, positions coalesce to the
latest per uid, and urgent traffic (emergencies, deletes, chat) jumps the queue.
"""

from __future__ import annotations

from collections import deque

import msgspec

from rallypoint.model.cot_type import Priority
from rallypoint.routing.envelope import Envelope

_COALESCED = (Priority.POSITION, Priority.OTHER_POSITION, Priority.BULK)


class OutboxStatistics(msgspec.Struct, frozen=True):
    """A snapshot of one outbox (exported as metrics)."""

    queued: int
    max_items: int
    offered: int
    coalesced: int
    dropped_overflow: int
    dropped_stale: int
    high_water: int


class Outbox:
    """Bounded priority queue with per-uid coalescing for position-like classes.

    Overflow policy: when full, the oldest envelope of the least urgent non-empty class is dropped
    (counted in ``dropped_overflow``); an urgent envelope is never dropped to make room for a less
    urgent one.
    """

    def __init__(self, max_items: int = 10_000) -> None:
        self.max_items = max_items
        self._fifo: dict[Priority, deque[Envelope]] = {p: deque() for p in Priority if p not in _COALESCED}
        # Coalesced classes: insertion-ordered dict uid -> latest envelope.
        self._latest: dict[Priority, dict[str, Envelope]] = {p: {} for p in _COALESCED}
        self._size = 0
        self._offered = 0
        self._coalesced = 0
        self._dropped_overflow = 0
        self._dropped_stale = 0
        self._high_water = 0

    def __len__(self) -> int:
        return self._size

    def put(self, envelope: Envelope) -> None:
        """Queue an envelope the socket cannot take now."""
        self._offered += 1
        prio = envelope.priority
        latest = self._latest.get(prio)
        if latest is not None:
            uid = envelope.event.uid
            if uid in latest:
                # Re-insert so ordering follows the newest report.
                del latest[uid]
                latest[uid] = envelope
                self._coalesced += 1
                return
            if self._size >= self.max_items and not self._make_room(prio):
                self._dropped_overflow += 1
                return
            latest[uid] = envelope
        else:
            if self._size >= self.max_items and not self._make_room(prio):
                self._dropped_overflow += 1
                return
            self._fifo[prio].append(envelope)
        self._size += 1
        if self._size > self._high_water:
            self._high_water = self._size

    def pop(self, now_ms: int) -> Envelope | None:
        """The most urgent envelope that is not yet stale, or None when empty."""
        while self._size:
            envelope = self._pop_any()
            if envelope is None:
                break
            if envelope.event.stale > now_ms:
                return envelope
            self._dropped_stale += 1
        return None

    def _pop_any(self) -> Envelope | None:
        for prio in Priority:
            fifo = self._fifo.get(prio)
            if fifo:
                self._size -= 1
                return fifo.popleft()
            latest = self._latest.get(prio)
            if latest:
                uid = next(iter(latest))
                self._size -= 1
                return latest.pop(uid)
        return None

    def _make_room(self, incoming: Priority) -> bool:
        for prio in reversed(Priority):
            if prio < incoming:
                return False
            fifo = self._fifo.get(prio)
            if fifo:
                fifo.popleft()
                self._size -= 1
                self._dropped_overflow += 1
                return True
            latest = self._latest.get(prio)
            if latest:
                del latest[next(iter(latest))]
                self._size -= 1
                self._dropped_overflow += 1
                return True
        return False

    def clear(self) -> None:
        for fifo in self._fifo.values():
            fifo.clear()
        for latest in self._latest.values():
            latest.clear()
        self._size = 0

    def statistics(self) -> OutboxStatistics:
        return OutboxStatistics(
            queued=self._size,
            max_items=self.max_items,
            offered=self._offered,
            coalesced=self._coalesced,
            dropped_overflow=self._dropped_overflow,
            dropped_stale=self._dropped_stale,
            high_water=self._high_water,
        )
