"""Read a window of stored history and the audit log into a report, a page at a time."""

from __future__ import annotations

from rallypoint.aar.compute import DEFAULT_LATE_MS, ReportBuilder
from rallypoint.aar.model import Report
from rallypoint.services.replay import ReplayWindow, window_rows
from rallypoint.storage.base import EventStore
from rallypoint.storage.base.audit import AuditRecords

# Rows per store query: large pages cost fewer round trips to the store's thread; the rows of one
# page are the only ones held at a time.
PAGE_ROWS = 5000
AUDIT_PAGE = 1000
NO_LIMIT = 2**62


async def build_report(events: EventStore, audit: AuditRecords | None, *, since_ms: int, until_ms: int,
                       exercise: str | None, late_ms: int = DEFAULT_LATE_MS) -> Report:
    """The report of ``since_ms <= time < until_ms``: every row (no reader filter), then every audit entry."""
    builder = ReportBuilder(since_ms=since_ms, until_ms=until_ms, exercise=exercise, late_ms=late_ms)
    async for row in window_rows(events, ReplayWindow(since_ms, until_ms), reader=None, limit=NO_LIMIT,
                                 page_rows=PAGE_ROWS):
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
