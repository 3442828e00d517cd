"""In-memory event store: tests, demos and ``--storage memory://`` (nothing survives a restart)."""

from __future__ import annotations

from collections.abc import Sequence

from rallypoint.errors import StorageError
from rallypoint.storage.base import HistoryQuery, StoredEvent, matches, type_matches


class MemoryEventStore:
    """``EventStore`` over a Python list. Queries scan linearly; fine for thousands of rows."""

    def __init__(self) -> None:
        # (arrival sequence, event); the sequence breaks ties between equal times.
        self._rows: list[tuple[int, StoredEvent]] = []
        self._next_seq = 0
        # uid -> (time, seq) of its latest picture row.
        self._latest: dict[str, tuple[int, int]] = {}
        self._deleted: set[int] = set()
        self._closed = False

    async def append(self, events: Sequence[StoredEvent]) -> None:
        """Persist a batch."""
        self._check_open()
        for ev in events:
            seq = self._next_seq
            self._next_seq += 1
            self._rows.append((seq, ev))
            if not ev.picture:
                continue
            key = (ev.time, seq)
            current = self._latest.get(ev.uid)
            if current is None or key > current:
                self._latest[ev.uid] = key

    async def query(self, q: HistoryQuery) -> list[StoredEvent]:
        """Events matching ``q``, ordered by (time, arrival) and limited."""
        return [ev for _, ev in await self.page(q)]

    async def page(self, q: HistoryQuery) -> list[tuple[int, StoredEvent]]:
        """Like :meth:`query`, with each row's arrival sequence as its key."""
        self._check_open()
        if q.limit <= 0:
            return []
        desc = q.order == "desc"
        hits = [
            (ev.time, seq, ev) for seq, ev in self._rows
            if matches(q, ev) and (q.after is None or ((ev.time, seq) < q.after if desc else (ev.time, seq) > q.after))
        ]
        hits.sort(key=lambda h: (h[0], h[1]), reverse=desc)
        return [(seq, ev) for _, seq, ev in hits[: q.limit]]

    async def latest(self, *, now_ms: int, types_prefix: tuple[str, ...] | None = None) -> list[StoredEvent]:
        """Latest live picture row per uid, ordered by time."""
        self._check_open()
        latest_seqs = {seq for _, seq in self._latest.values()}
        out = [
            (ev.time, seq, ev)
            for seq, ev in self._rows
            if seq in latest_seqs
            and seq not in self._deleted
            and ev.stale > now_ms
            and type_matches(ev.type, types_prefix)
        ]
        out.sort(key=lambda h: (h[0], h[1]))
        return [ev for _, _, ev in out]

    async def delete_uid(self, uid: str) -> None:
        """Mark the uid's latest picture row deleted."""
        self._check_open()
        current = self._latest.get(uid)
        if current is not None:
            self._deleted.add(current[1])

    async def prune(self, older_than_ms: int) -> int:
        """Drop old history, keeping each uid's latest picture row while it is live."""
        self._check_open()
        latest_seqs = {seq for _, seq in self._latest.values()}
        kept: list[tuple[int, StoredEvent]] = []
        for seq, ev in self._rows:
            live_latest = seq in latest_seqs and seq not in self._deleted and ev.stale > older_than_ms
            if ev.time < older_than_ms and not live_latest:
                self._deleted.discard(seq)
                continue
            kept.append((seq, ev))
        removed = len(self._rows) - len(kept)
        self._rows = kept
        # A uid's latest picture row is only removed together with its older picture rows, so
        # dropping the entry is enough; no other picture row of that uid remains.
        remaining = {seq for seq, _ in kept}
        self._latest = {uid: key for uid, key in self._latest.items() if key[1] in remaining}
        return removed

    async def close(self) -> None:
        """Forget everything."""
        self._closed = True
        self._rows = []
        self._latest = {}
        self._deleted = set()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("event store is closed")
