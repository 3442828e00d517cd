"""Several processes append to one SQLite event file (``serve --workers N``): a batch never fails because
another process committed while it was being written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from rallypoint.storage.base import HistoryQuery, StoredEvent
from rallypoint.storage.sqlite import schema
from rallypoint.storage.sqlite.events import SqliteEventStore, _append
from rallypoint.storage.sqlite.group_sets import GroupSetCache

MakeEvent = Callable[..., StoredEvent]


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=0)
    schema.configure(db)
    db.execute("PRAGMA busy_timeout=0")
    return db


async def test_a_batch_with_a_new_group_set_survives_another_writer_committing_meanwhile(
    tmp_path: Path, ev: MakeEvent
) -> None:
    path = tmp_path / "events.db"
    store = SqliteEventStore(path)
    await store.append([ev("first")])
    await store.close()
    ours, other = _connect(path), _connect(path)
    other_wrote: list[bool] = []

    def other_process_writes(statement: str) -> None:
        # Right after our batch looked up its group set, and before it inserts it, another worker
        # tries to commit a write of its own (it may only wait its turn: no lock-free window).
        if statement.startswith("INSERT INTO group_sets") and not other_wrote:
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO group_sets (names) VALUES ('[\"Other\"]')")
                other.execute("COMMIT")
                other_wrote.append(True)
            except sqlite3.OperationalError:
                other_wrote.append(False)

    ours.set_trace_callback(other_process_writes)
    _append(ours, GroupSetCache(), [ev("second", groups=frozenset({"Cyan"}))])
    ours.set_trace_callback(None)
    ours.close()
    other.close()
    reopened = SqliteEventStore(path)
    try:
        assert {e.uid for e in await reopened.query(HistoryQuery())} == {"first", "second"}
    finally:
        await reopened.close()
