"""Read a window of stored history and the audit log into a report, a page at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from rallypoint.aar.compute import DEFAULT_LATE_MS, ReportBuilder
from rallypoint.aar.model import Report
from rallypoint.storage.base import EventStore, HistoryQuery, StoredEvent
from rallypoint.storage.base.audit import AuditRecords

# Rows per store query: large pages cost fewer round trips to the store's thread; the rows of one
# page are the only ones held at a time.
PAGE_ROWS = 5000
AUDIT_PAGE = 1000


async def window_pages(events: EventStore, since_ms: int, until_ms: int,
                       page_rows: int = PAGE_ROWS) -> AsyncIterator[StoredEvent]:
    """Every row of ``since_ms <= time < until_ms`` oldest first (no reader filter), a keyset page at a time.

    Each page's window also starts at the cursor's time: the cursor alone (``after``) is an OR of two
    conditions that SQLite's time index does not narrow to, so without it every page would walk the
    index from the window's start again (quadratic over a million rows).
    """
    after: tuple[int, int] | None = None
    while True:
        start = since_ms if after is None else after[0]
        page = await events.page(HistoryQuery(since_ms=start, until_ms=until_ms, limit=page_rows, order="asc",
                                              after=after))
        for _, row in page:
            yield row
        if len(page) < page_rows:
            return
        key, last = page[-1]
        after = (last.time, key)


async def build_report(events: EventStore, audit: AuditRecords | None, *, since_ms: int, until_ms: int,
                       exercise: str | None, late_ms: int = DEFAULT_LATE_MS) -> Report:
    """The report of ``since_ms <= time < until_ms``: every row (no reader filter), then every audit entry."""
    builder = ReportBuilder(since_ms=since_ms, until_ms=until_ms, exercise=exercise, late_ms=late_ms)
    async for row in window_pages(events, since_ms, until_ms):
        builder.add_row(row)
    if audit is not None:
        after = 0
        while True:
            rows = await audit.rows(since_seq=after, limit=AUDIT_PAGE)
            for entry in rows:
                builder.add_audit(entry.ts_ms, entry.actor, entry.action, entry.target)
            if len(rows) < AUDIT_PAGE:
                break
            after = rows[-1].seq
    return builder.finish()
