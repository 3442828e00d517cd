"""The EventStore contract for exercise marking (``HistoryQuery.exercise``), on every backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import msgspec

from rallypoint.storage.base import EXERCISE_NONE, EventStore, HistoryQuery, StoredEvent
from rallypoint.storage.sqlite import schema
from rallypoint.storage.sqlite.events import SqliteEventStore
from tests.support.stored import make_event

MakeEvent = Callable[..., StoredEvent]
T0 = 1_700_000_000_000


def _in(exercise: str | None, row: StoredEvent) -> StoredEvent:
    return msgspec.structs.replace(row, exercise=exercise)


async def test_rows_keep_their_exercise_and_filter_by_it(store: EventStore, ev: MakeEvent) -> None:
    await store.append([
        ev("live-1", time=T0),
        _in("ex-1", ev("sim-1", time=T0 + 1)),
        _in("ex_2", ev("sim-2", time=T0 + 2)),
        ev("live-2", time=T0 + 3),
        _in("ex-1", ev("sim-3", time=T0 + 4)),
    ])

    def uids(rows: list[StoredEvent]) -> list[str]:
        return [r.uid for r in rows]

    every = await store.query(HistoryQuery())
    assert uids(every) == ["live-1", "sim-1", "sim-2", "live-2", "sim-3"]
    assert [r.exercise for r in every] == [None, "ex-1", "ex_2", None, "ex-1"]
    assert uids(await store.query(HistoryQuery(exercise=EXERCISE_NONE))) == ["live-1", "live-2"]
    assert uids(await store.query(HistoryQuery(exercise="ex-1"))) == ["sim-1", "sim-3"]
    assert uids(await store.query(HistoryQuery(exercise="ex-1", order="desc", limit=1))) == ["sim-3"]
    assert await store.query(HistoryQuery(exercise="ex-3")) == []
    # Combined with the other filters and the keyset cursor.
    first = await store.page(HistoryQuery(exercise="ex-1", limit=1))
    rest = await store.page(HistoryQuery(exercise="ex-1", after=(first[0][1].time, first[0][0])))
    assert [r.uid for _, r in rest] == ["sim-3"]
    assert uids(await store.query(HistoryQuery(exercise=EXERCISE_NONE, uid="live-2"))) == ["live-2"]


async def test_latest_is_not_filtered_by_exercise(store: EventStore, ev: MakeEvent) -> None:
    # The picture's reload is not an exercise filter: an exercise's live items reload as they were.
    await store.append([_in("ex-1", ev("sim", time=T0, stale_s=3600)), ev("live", time=T0 + 1, stale_s=3600)])
    latest = await store.latest(now_ms=T0 + 10)
    assert {(r.uid, r.exercise) for r in latest} == {("sim", "ex-1"), ("live", None)}


async def test_sqlite_file_of_version_2_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for step in schema.MIGRATIONS[:2]:
        if isinstance(step, str):
            db.executescript(step)
        else:
            step(db)
    db.execute("INSERT INTO events (uid, type, how, time, start, stale, lat, lon, hae, xml, received)"
               " VALUES ('old', 'a-f-G', 'm-g', ?, ?, ?, 1, 2, 0, x'3c653e', ?)", (T0, T0, T0 + 60_000, T0))
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    store = SqliteEventStore(path)
    try:
        await store.append([_in("ex-1", make_event("new", time=T0 + 1))])
        rows = await store.query(HistoryQuery())
        assert [(r.uid, r.exercise) for r in rows] == [("old", None), ("new", "ex-1")]
        assert [r.uid for r in await store.query(HistoryQuery(exercise=EXERCISE_NONE))] == ["old"]
    finally:
        await store.close()
