"""The coalesced half of a federation link's queue on disk: the latest report of each uid per peer.

Positions (and other bulk reports) are not numbered or acknowledged: the link keeps only the latest
report of each uid and sends it again after every reconnect, so the peer's picture converges. This
journal keeps the same map in ``federation.db`` (table ``positions``, one row per uid, overwritten),
so a restart of this server still sends the peer the latest report of every uid that had not expired.
The receiver drops a report it already accepted (``federation/dedup.py``), so a replay after a
reconnect or a restart reaches its clients once.

Writes are batched like the durable lanes: :meth:`put` and :meth:`drop` only record what changed;
the link's persister calls :meth:`flush`. A uid reported many times between two flushes is written
once. Rows whose stale has passed are deleted at load and at most once a minute while running, so
a long run with many short-lived uids (feeds, tracks) does not grow the table.
"""

from __future__ import annotations

from rallypoint.clock import Clock
from rallypoint.protocol.fig import fig_pb2
from rallypoint.storage.base.federation import FederationRecords


class PositionJournal:
    """Pending writes of one peer's latest-report map, and its restore at start."""

    PRUNE_EVERY_S = 60.0

    def __init__(self, store: FederationRecords, peer: str, clock: Clock) -> None:
        self._store = store
        self._peer = peer
        self._clock = clock
        self._pruned = clock.monotonic()
        # uid -> (order, stale, message) to write, or None to delete the row.
        self._pending: dict[str, tuple[int, int, fig_pb2.FederatedEvent] | None] = {}
        self._writing = 0
        self._ord = 0

    def put(self, uid: str, msg: fig_pb2.FederatedEvent, stale: int) -> None:
        """``msg`` is now the latest report of ``uid``."""
        self._ord += 1
        self._pending[uid] = (self._ord, stale, msg)

    def drop(self, uid: str) -> None:
        """``uid`` was deleted: its row must not be sent after a restart."""
        self._pending[uid] = None

    @property
    def unwritten(self) -> int:
        """Changes not yet on disk (including the batch being written)."""
        return len(self._pending) + self._writing

    async def load(self, now_ms: int) -> list[tuple[str, int, fig_pb2.FederatedEvent]]:
        """The kept reports that have not expired, in the order of their last update."""
        rows = await self._store.positions(self._peer, now_ms)
        # Later updates must sort after every kept row.
        self._ord = max((ord_ for _, ord_, _, _ in rows), default=0)
        return [(uid, stale, fig_pb2.FederatedEvent.FromString(payload)) for uid, _, stale, payload in rows]

    async def flush(self) -> None:
        """Write every pending change in one transaction (and now and then forget expired rows)."""
        if self._clock.monotonic() - self._pruned >= self.PRUNE_EVERY_S:
            self._pruned = self._clock.monotonic()
            await self._store.prune_positions(self._peer, self._clock.now_ms())
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        self._writing = len(batch)
        try:
            upserts = [(uid, v[0], v[1], v[2].SerializeToString()) for uid, v in batch.items() if v is not None]
            deletes = [uid for uid, v in batch.items() if v is None]
            await self._store.save_positions(self._peer, upserts, deletes)
        finally:
            self._writing = 0
