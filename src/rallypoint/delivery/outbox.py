"""Per-receiver outbox: bounded in items and bytes, by priority with aging, latest-position-wins per uid.

The outbox only holds what the socket (or the link budget) could not take yet. While the receiver
keeps up, envelopes go straight to the wire and the outbox stays empty; once it falls behind,
positions coalesce to the latest per uid and urgent traffic (emergencies, deletes, chat) jumps the
queue.

Classes, most urgent first (``Priority``): EMERGENCY (emergencies, deletes) > MESSAGE (chat, tasks,
designations, mission changes, persistent items) > POSITION (positions of the receiver's own group)
> OTHER_POSITION (positions of other groups, peers and feeds) > BULK (anything else). The caller
says whether a position is of its own group (``put(..., own_group=...)``): a stream session passes
True when the sender shares one of the receiver's write (IN) groups, i.e. the receiver's own team;
positions that reach it only through extra read groups, a federation peer or a feed are "other".

Guarantees (pinned by property tests in ``tests/unit/delivery``):

* Bounds: never more than ``max_items`` envelopes nor ``max_bytes`` (estimated) bytes queued.
* Overflow: room is made by dropping the oldest envelope of the least urgent non-empty class that
  is not more urgent than the incoming one; if that is not possible the incoming envelope is
  dropped. A more urgent envelope is never dropped for a less urgent one. Counted.
* Coalescing (POSITION, OTHER_POSITION, BULK): at most one envelope per uid and class is queued;
  a newer report replaces the queued one *in place*: the uid keeps its place in the queue and its
  waiting time, so a uid that reports often is not pushed back behind quieter ones forever.
* Order: EMERGENCY first, always, FIFO. Among the other classes, strict priority (FIFO within a
  class, by first queueing) except for aging: a class head that has waited at least
  ``max_wait_ms[class]`` is overdue, and overdue heads are served before any head that is not,
  oldest first. So a lower class is delayed by at most its max wait plus the time needed to
  serve what was queued before it; it is never starved.
* Stale: an envelope whose CoT ``stale`` time has passed is never returned (dropped, counted).
* Deletes: when a delete (``t-x-d-d`` linking uid X) is queued, every envelope of X queued in a
  less urgent class is dropped (counted as ``dropped_deleted``). The delete jumps ahead of them, so
  a receiver that is behind would otherwise get the delete and then an older report that re-creates
  X. Envelopes of X queued after the delete stay: they are newer than it and pop after it.
* Accounting: ``offered == returned + queued + coalesced + dropped_overflow + dropped_stale +
  dropped_deleted + cleared``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import msgspec

from rallypoint.model.cot_type import COALESCED_CLASSES, DELETE, Priority, delivery_priority
from rallypoint.routing.envelope import Envelope

# Used when the envelope has no original bytes: a typical PLI is 400-700 bytes on the wire.
DEFAULT_SIZE_ESTIMATE = 600
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
_NEVER = 1 << 62
DEFAULT_MAX_WAIT_MS: Mapping[Priority, int] = {
    Priority.EMERGENCY: _NEVER,
    Priority.MESSAGE: 5_000,
    Priority.POSITION: 10_000,
    Priority.OTHER_POSITION: 20_000,
    Priority.BULK: 30_000,
}
_AGED_CLASSES = tuple(p for p in Priority if p is not Priority.EMERGENCY)


def size_estimate(envelope: Envelope) -> int:
    """Bytes an envelope will roughly take on the wire (the exact size depends on the format)."""
    raw = envelope.event.raw
    return len(raw) if raw is not None else DEFAULT_SIZE_ESTIMATE


class OutboxStatistics(msgspec.Struct, frozen=True):
    """A snapshot of one outbox (exported as metrics).

    ``queued_by_class`` is keyed by ``Priority`` name; ``aged`` counts envelopes served ahead of
    a more urgent class because they were overdue; ``coalesced`` counts queued envelopes replaced
    by a newer report of the same uid; ``dropped_deleted`` counts queued envelopes of a uid dropped
    because a delete of that uid was queued ahead of them.
    """

    queued: int
    queued_by_class: dict[str, int]
    bytes: int
    max_items: int
    max_bytes: int
    offered: int
    returned: int
    coalesced: int
    aged: int
    dropped_overflow: int
    dropped_stale: int
    dropped_deleted: int
    cleared: int
    high_water: int
    high_water_bytes: int


class _Item:
    """A queue slot; coalescing swaps the envelope inside it so the slot keeps its place."""

    __slots__ = ("envelope", "queued_ms", "size", "uid")

    def __init__(self, envelope: Envelope, size: int, queued_ms: int) -> None:
        self.envelope = envelope
        self.size = size
        self.queued_ms = queued_ms
        self.uid = envelope.event.uid


class Outbox:
    """Bounded priority queue with aging and per-uid coalescing for position-like classes.

    Removals happen at the head of a class queue (pop, overflow, stale), so each class is a deque
    plus, for coalesced classes, a uid index into it. The exception is a delete, which removes the
    deleted uid's envelopes wherever they are: a linear pass over a deque, taken only when the uid
    is known to be queued there (the index, or a per-uid count for ``MESSAGE``), so a delete of a
    uid that has nothing queued costs a few dictionary lookups.
    """

    def __init__(
        self,
        max_items: int = 10_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        max_wait_ms: Mapping[Priority, int] | None = None,
    ) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError("outbox bounds must be positive")
        self.max_items = max_items
        self.max_bytes = max_bytes
        waits = dict(DEFAULT_MAX_WAIT_MS)
        if max_wait_ms:
            waits.update(max_wait_ms)
        self._max_wait = waits
        self._queues: dict[Priority, deque[_Item]] = {p: deque() for p in Priority}
        self._index: dict[Priority, dict[str, _Item]] = {p: {} for p in COALESCED_CLASSES}
        # Messages are not coalesced, so a uid may have several; counted to find them on a delete.
        self._message_uids: dict[str, int] = {}
        self._size = 0
        self._bytes = 0
        self._offered = 0
        self._returned = 0
        self._coalesced = 0
        self._aged = 0
        self._dropped_overflow = 0
        self._dropped_stale = 0
        self._dropped_deleted = 0
        self._cleared = 0
        self._high_water = 0
        self._high_water_bytes = 0

    def __len__(self) -> int:
        return self._size

    @property
    def bytes(self) -> int:
        """Estimated bytes queued."""
        return self._bytes

    @property
    def full(self) -> bool:
        """True when a typical envelope would no longer fit without dropping something."""
        return self._size >= self.max_items or self._bytes + DEFAULT_SIZE_ESTIMATE > self.max_bytes

    def put(self, envelope: Envelope, *, now_ms: int, own_group: bool = True, size: int | None = None) -> bool:
        """Queue an envelope the receiver cannot take now; False when it was dropped.

        ``size`` is the wire size if the caller knows it (else estimated from the original
        bytes); ``own_group`` ranks positions (see the module docstring).
        """
        self._offered += 1
        if envelope.event.stale <= now_ms:
            self._dropped_stale += 1
            return False
        prio = delivery_priority(envelope.priority, own_group=own_group)
        nbytes = size_estimate(envelope) if size is None else size
        index = self._index.get(prio)
        if index is not None:
            item = index.get(envelope.event.uid)
            if item is not None:
                return self._coalesce(item, prio, envelope, nbytes)
        if not self._make_room(prio, 1, nbytes, protect=None):
            self._dropped_overflow += 1
            return False
        if envelope.event.type == DELETE and envelope.event.detail.link_uid is not None:
            # Only once the delete is sure to be queued: a dropped delete must not take X's state with it.
            self._drop_uid(envelope.event.detail.link_uid, less_urgent_than=prio)
        item = _Item(envelope, nbytes, now_ms)
        self._queues[prio].append(item)
        if index is not None:
            index[item.uid] = item
        elif prio is Priority.MESSAGE:
            self._message_uids[item.uid] = self._message_uids.get(item.uid, 0) + 1
        self._size += 1
        self._bytes += nbytes
        self._note_high_water()
        return True

    def peek(self, now_ms: int, *, urgent_only: bool = False) -> Envelope | None:
        """The envelope ``pop`` would return now, left in place (stale heads are dropped).

        ``urgent_only``: look at EMERGENCY and MESSAGE only (what may go while a position waits).
        """
        prio = self._next_class(now_ms, urgent_only)
        return None if prio is None else self._queues[prio][0].envelope

    def pop(self, now_ms: int, *, urgent_only: bool = False) -> Envelope | None:
        """The next envelope to send (see the ordering rules), or None when nothing is left."""
        prio = self._next_class(now_ms, urgent_only)
        if prio is None:
            return None
        if prio is not Priority.EMERGENCY and self._skips_more_urgent(prio):
            self._aged += 1
        self._returned += 1
        return self._remove_head(prio).envelope

    def clear(self) -> None:
        """Forget everything queued (the receiver is gone); counted as ``cleared``."""
        self._cleared += self._size
        for queue in self._queues.values():
            queue.clear()
        for index in self._index.values():
            index.clear()
        self._message_uids.clear()
        self._size = 0
        self._bytes = 0

    def statistics(self) -> OutboxStatistics:
        """Counters and current occupancy."""
        return OutboxStatistics(
            queued=self._size,
            queued_by_class={p.name: len(q) for p, q in self._queues.items()},
            bytes=self._bytes,
            max_items=self.max_items,
            max_bytes=self.max_bytes,
            offered=self._offered,
            returned=self._returned,
            coalesced=self._coalesced,
            aged=self._aged,
            dropped_overflow=self._dropped_overflow,
            dropped_stale=self._dropped_stale,
            dropped_deleted=self._dropped_deleted,
            cleared=self._cleared,
            high_water=self._high_water,
            high_water_bytes=self._high_water_bytes,
        )

    # --- internals ---------------------------------------------------------------------------
    def _coalesce(self, item: _Item, prio: Priority, envelope: Envelope, nbytes: int) -> bool:
        grow = nbytes - item.size
        if grow > 0 and not self._make_room(prio, 0, grow, protect=item):
            # Keep the older report rather than evict anything for the newer, larger one.
            self._dropped_overflow += 1
            return False
        self._coalesced += 1
        item.envelope = envelope
        item.size = nbytes
        self._bytes += grow
        self._note_high_water()
        return True

    def _drop_uid(self, uid: str, *, less_urgent_than: Priority) -> None:
        """Drop every envelope of ``uid`` queued in a class less urgent than ``less_urgent_than``."""
        for prio in Priority:
            if prio <= less_urgent_than:
                continue
            queue = self._queues[prio]
            index = self._index.get(prio)
            if index is not None:
                item = index.pop(uid, None)
                gone = [] if item is None else [item]
                if item is not None:
                    queue.remove(item)
            elif prio is Priority.MESSAGE and self._message_uids.pop(uid, 0):
                gone = [i for i in queue if i.uid == uid]
                kept = [i for i in queue if i.uid != uid]
                queue.clear()
                queue.extend(kept)
            else:
                continue
            self._size -= len(gone)
            self._bytes -= sum(i.size for i in gone)
            self._dropped_deleted += len(gone)

    def _make_room(self, incoming: Priority, items: int, nbytes: int, *, protect: _Item | None) -> bool:
        """Drop oldest, least urgent first (never more urgent than ``incoming``) until it fits."""
        if nbytes > self.max_bytes:
            return False
        while self._size + items > self.max_items or self._bytes + nbytes > self.max_bytes:
            for prio in reversed(Priority):
                if prio < incoming:
                    return False
                queue = self._queues[prio]
                if queue and queue[0] is not protect:
                    self._remove_head(prio)
                    self._dropped_overflow += 1
                    break
            else:
                return False
        return True

    def _next_class(self, now_ms: int, urgent_only: bool = False) -> Priority | None:
        """The class whose head goes next, after dropping stale heads."""
        queues = self._queues
        if self._size == 0:
            return None
        if self._fresh_head(Priority.EMERGENCY, now_ms):
            return Priority.EMERGENCY
        if urgent_only:
            return Priority.MESSAGE if self._fresh_head(Priority.MESSAGE, now_ms) else None
        first: Priority | None = None
        overdue: Priority | None = None
        overdue_since = _NEVER
        for prio in _AGED_CLASSES:
            if not self._fresh_head(prio, now_ms):
                continue
            if first is None:
                first = prio
            queued_ms = queues[prio][0].queued_ms
            if now_ms - queued_ms >= self._max_wait[prio] and queued_ms < overdue_since:
                overdue, overdue_since = prio, queued_ms
        return overdue if overdue is not None else first

    def _fresh_head(self, prio: Priority, now_ms: int) -> bool:
        """Drop stale envelopes at the head of ``prio``; True if a live one is left there."""
        queue = self._queues[prio]
        while queue:
            if queue[0].envelope.event.stale > now_ms:
                return True
            self._remove_head(prio)
            self._dropped_stale += 1
        return False

    def _skips_more_urgent(self, prio: Priority) -> bool:
        return any(self._queues[p] for p in Priority if p < prio)

    def _remove_head(self, prio: Priority) -> _Item:
        item = self._queues[prio].popleft()
        index = self._index.get(prio)
        if index is not None:
            del index[item.uid]
        elif prio is Priority.MESSAGE:
            left = self._message_uids[item.uid] - 1
            if left:
                self._message_uids[item.uid] = left
            else:
                del self._message_uids[item.uid]
        self._size -= 1
        self._bytes -= item.size
        return item

    def _note_high_water(self) -> None:
        if self._size > self._high_water:
            self._high_water = self._size
        if self._bytes > self._high_water_bytes:
            self._high_water_bytes = self._bytes
