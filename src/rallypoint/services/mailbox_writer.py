"""The mailbox's write queue: changes kept in memory and written to the store in batches.

New mail is bounded by the caller (it checks :attr:`MailboxWriter.pending_mail`); cursors and
registry rows are coalesced per identity; seen rows (other nodes' mail delivered here) are bounded
by the caller's own memory of them. One writer task at a time is started on demand and
awaited by :meth:`MailboxWriter.flush` (and by the mailbox's ``close``), so there is no long-lived
loop that would have to be told to stop. Delivery reads the memory copy, so mail that is not yet
written is delivered too. After a crash (not a clean SIGTERM) the last unwritten batch can be lost:
new mail in it is lost and mail delivered since the last written cursor is delivered once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from rallypoint.clock import Clock
from rallypoint.errors import RallypointError
from rallypoint.storage.base.mailbox import MailboxBatch, MailboxRecords, MailRecord, RecipientRecord, SeenRecord

log = logging.getLogger(__name__)

_BATCH = 500
_PURGE_EVERY_S = 600.0


class MailboxWriter:
    """Queues mailbox changes and writes them to a :class:`MailboxRecords` store."""

    def __init__(self, store: MailboxRecords, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        # Not yet written: new mail (bounded by the caller), cursors and registry rows (one per identity).
        self._queue: deque[tuple[MailRecord, tuple[str, ...]]] = deque()
        self._dirty_cursors: dict[str, int] = {}
        # Messages written out of order (above the identity's cursor), marked delivered one by one.
        self._delivered: set[tuple[str, int]] = set()
        self._dirty_records: dict[str, RecipientRecord] = {}
        self._forget: set[str] = set()
        self._seen: list[SeenRecord] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._purged_at = clock.monotonic()
        # Changes taken into the batch being written: not yet durable, no longer in the queues.
        self._in_flight = 0
        self.write_errors = 0

    @property
    def pending_mail(self) -> int:
        """New mail waiting to be written."""
        return len(self._queue)

    @property
    def unwritten(self) -> int:
        """Changes (mail, cursors, registry rows, removals) not yet durable, the batch in flight included."""
        return (
            len(self._queue)
            + len(self._dirty_cursors)
            + len(self._dirty_records)
            + len(self._forget)
            + len(self._delivered)
            + len(self._seen)
            + self._in_flight
        )

    def add_mail(self, mail: MailRecord, identities: tuple[str, ...]) -> None:
        """Queue new mail for ``identities``."""
        self._queue.append((mail, identities))
        self._schedule()

    def set_cursor(self, identity: str, seq: int) -> None:
        """Queue the identity's delivery cursor (the last ``seq`` handed over)."""
        self._dirty_cursors[identity] = seq
        self._schedule()

    def mark_delivered(self, identity: str, seq: int) -> None:
        """Queue the delivery of one message to one identity (for messages written out of order)."""
        self._delivered.add((identity, seq))
        self._schedule()

    def add_seen(self, record: SeenRecord) -> None:
        """Queue a seen row: a message of another node delivered here to an identity."""
        self._seen.append(record)
        self._schedule()

    def put_record(self, record: RecipientRecord, forgotten: list[str]) -> None:
        """Queue a registry row, and the removal of the identities the registry forgot to make room."""
        for gone in forgotten:
            self._dirty_cursors.pop(gone, None)
            self._dirty_records.pop(gone, None)
            self._forget.add(gone)
        if forgotten:
            gone_set = set(forgotten)
            self._delivered = {d for d in self._delivered if d[0] not in gone_set}
        self._forget.discard(record.identity)
        self._dirty_records[record.identity] = record
        self._schedule()

    async def flush(self) -> None:
        """Wait until every queued change is written."""
        task = self._writer
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._has_work():
            await self._write_all()

    async def close(self) -> None:
        """Write everything still queued; write errors from now on stop the writer instead of retrying."""
        self._closed = True
        await self.flush()

    def _has_work(self) -> bool:
        return bool(
            self._queue or self._dirty_cursors or self._dirty_records or self._forget or self._delivered or self._seen
        )

    def _schedule(self) -> None:
        """Start the writer task unless one is running (or there is no event loop: flush() writes later)."""
        if self._writer is not None and not self._writer.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): flush() writes it later
        # One writer at a time, started on demand and awaited by close(): no long-lived loop that
        # would have to be told to stop.
        self._writer = loop.create_task(self._write_all(), name="mailbox-writer")

    async def _write_all(self) -> None:
        while self._has_work():
            mails = tuple(self._queue.popleft() for _ in range(min(_BATCH, len(self._queue))))
            cursors, self._dirty_cursors = self._dirty_cursors, {}
            records, self._dirty_records = self._dirty_records, {}
            forget, self._forget = self._forget, set()
            delivered = self._take_delivered()
            seen, self._seen = self._seen, []
            batch = MailboxBatch(
                mails=mails,
                cursors=tuple(cursors.items()),
                recipients=tuple(records.values()),
                forget=tuple(forget),
                delivered=tuple(delivered),
                seen=tuple(seen),
                now_ms=self._clock.now_ms(),
            )
            self._in_flight = len(mails) + len(cursors) + len(records) + len(forget) + len(delivered) + len(seen)
            try:
                await self._store.apply(batch)
                self._in_flight = 0
                # Delivered and expired rows are deleted now and then, not on every delivery.
                if self._clock.monotonic() - self._purged_at >= _PURGE_EVERY_S:
                    self._purged_at = self._clock.monotonic()
                    await self._store.purge(self._clock.now_ms())
            except RallypointError:
                self._in_flight = 0
                self.write_errors += 1
                log.exception("mailbox write failed", extra={"messages": len(mails)})
                if self._closed:
                    return
                # Keep the batch: mail is only ever dropped by its own expiry, not by a disk hiccup.
                self._requeue(mails, cursors, records, forget)
                self._delivered |= delivered
                self._seen[:0] = seen
                await asyncio.sleep(min(5.0, 0.5 * self.write_errors))

    def _take_delivered(self) -> set[tuple[str, int]]:
        """Delivery marks whose message row is written by now (or in this batch).

        A mark for mail still waiting in the queue stays for a later batch: deleting its pending row
        before the row exists would let the insert bring the message back.
        """
        if not self._delivered:
            return set()
        limit = self._queue[0][0].seq if self._queue else None
        if limit is None:
            taken, self._delivered = self._delivered, set()
            return taken
        taken = {d for d in self._delivered if d[1] < limit}
        self._delivered -= taken
        return taken

    def _requeue(
        self,
        mails: tuple[tuple[MailRecord, tuple[str, ...]], ...],
        cursors: dict[str, int],
        records: dict[str, RecipientRecord],
        forget: set[str],
    ) -> None:
        """Put a failed batch back in front of what was queued since (newer cursors and rows win)."""
        self._queue.extendleft(reversed(mails))
        for identity, seq in cursors.items():
            self._dirty_cursors[identity] = max(seq, self._dirty_cursors.get(identity, seq))
        for identity, record in records.items():
            self._dirty_records.setdefault(identity, record)
        self._forget |= forget - self._dirty_records.keys()
