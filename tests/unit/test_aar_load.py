"""Paging a window out of a real SQLite event store for the report (``rallypoint.aar.load``)."""

from __future__ import annotations

from pathlib import Path

from rallypoint.aar.load import window_pages
from rallypoint.storage.sqlite.events import SqliteEventStore
from tests.support.stored import T0, make_event


async def test_every_row_once_in_order_across_pages_with_equal_times(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    # Runs of equal times straddle the page boundaries (page of 7, runs of 3).
    rows = [make_event(f"u-{i}", time=T0 + (i // 3) * 1000) for i in range(50)]
    rows.append(make_event("before", time=T0 - 1))
    rows.append(make_event("at-until", time=T0 + 17_000))
    try:
        await store.append(rows)
        got = [r.uid async for r in window_pages(store, T0, T0 + 17_000, page_rows=7)]
    finally:
        await store.close()
    assert got == [f"u-{i}" for i in range(50)]
