"""Event files written before access groups became sets open, migrated, with their rows intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rallypoint.storage.base import HistoryQuery, HistoryReader
from rallypoint.storage.sqlite import schema
from rallypoint.storage.sqlite.events import SqliteEventStore

T0 = 1_700_000_000_000
HOUR = 3_600_000


def _version_1_file(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        first = schema.MIGRATIONS[0]
        assert isinstance(first, str)
        db.executescript(first)
        rows = [
            # uid, time, grp (version 1: access groups comma-joined; empty when addressed), sender
            ("marker", T0, "Blue,Red", "cert:blue"),
            ("marker", T0 + 1, "", "cert:blue"),  # re-sent to one contact
            ("ops", T0 + 2, "Ops", "cert:ops"),
            ("chat", T0 + 3, None, "cert:ops"),
        ]
        db.executemany(
            "INSERT INTO events (uid, type, how, time, start, stale, lat, lon, hae, callsign, grp, sender, xml,"
            " received) VALUES (?, 'b-m-p-s-m', 'h-g-i-g-o', ?, ?, ?, 1.0, 2.0, 0.0, NULL, ?, ?, '<event/>', ?)",
            [(uid, t, t, t + HOUR, grp, sender, t) for uid, t, grp, sender in rows],
        )
        db.execute("PRAGMA user_version = 1")
        db.commit()
    finally:
        db.close()


async def test_a_version_1_file_is_migrated_to_group_sets_and_picture_rows(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    _version_1_file(path)

    store = SqliteEventStore(path)
    try:
        rows = await store.query(HistoryQuery())
        assert [(r.uid, r.groups, r.team, r.picture) for r in rows] == [
            ("marker", frozenset({"Blue", "Red"}), None, True),
            ("marker", frozenset(), None, False),
            ("ops", frozenset({"Ops"}), None, True),
            ("chat", frozenset(), None, False),
        ]
        # The broadcast marker is the picture again, not its addressed copy.
        latest = await store.latest(now_ms=T0 + 10)
        assert [(r.uid, r.time) for r in latest] == [("marker", T0), ("ops", T0 + 2)]
        red = HistoryReader(groups=frozenset({"Red"}))
        assert [r.uid for r in await store.query(HistoryQuery(reader=red))] == ["marker"]
        # New rows join the sets the migration created.
        await store.append([rows[0]])
        assert len(await store.query(HistoryQuery(reader=red))) == 2
    finally:
        await store.close()

    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 3
        columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        assert "grp" not in columns and {"gset", "team", "picture"} <= columns
        assert db.execute("SELECT count(*) FROM group_sets").fetchone()[0] == 3  # {}, {Blue,Red}, {Ops}
    finally:
        db.close()
