"""SQLite event store: the default, embedded backend.

One connection, owned by one dedicated worker thread: every call is a job submitted to a
single-thread executor, so SQLite never runs on the event loop and jobs run in submission order
(a batch appended before a ``delete_uid`` is on disk before the delete looks for it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rallypoint.storage.base import (
    EXERCISE_ANY,
    EXERCISE_NONE,
    BBox,
    HistoryQuery,
    HistoryReader,
    StoredEvent,
    prefix_upper_bound,
)
from rallypoint.storage.sqlite import schema
from rallypoint.storage.sqlite.group_sets import EMPTY_SET, GroupSetCache
from rallypoint.storage.sqlite.worker import SqliteWorker

T = TypeVar("T")

# Column order matches StoredEvent's field order (``gset`` stands for ``groups``).
_COLUMNS = (
    "uid, type, how, time, start, stale, lat, lon, hae, callsign, gset, team, sender, xml, received, picture, exercise"
)
_WIDTH = 17  # values per row
_GSET = 10  # position of gset in _COLUMNS
# A batch is inserted with statements of many rows each (one multi-row VALUES): the sqlite3 module
# steps a statement with the GIL released, once per execution, so one row per execution means one
# GIL hand-off and one statement reset per row (executemany), and the event loop's thread pays for
# the hand-offs. Rows of a batch go in chunks of these sizes, largest first, in the batch's order
# (ids, which break ties between equal times, stay in append order). 256 x 17 values stay well
# under SQLite's limit of 32,766 parameters per statement.
_CHUNK_SIZES = (256, 32, 1)
_INSERT = {
    size: f"INSERT INTO events ({_COLUMNS}) VALUES " + ", ".join(["(" + ", ".join("?" * _WIDTH) + ")"] * size)
    for size in _CHUNK_SIZES
}
# "Some other picture row of the same uid comes after this one" (greater time, or same time
# appended later). Only picture rows compete for "latest" (see ``storage.base``).
_SUPERSEDED = (
    "EXISTS (SELECT 1 FROM events n WHERE n.uid = e.uid AND n.time >= e.time"
    " AND (n.time > e.time OR n.id > e.id) AND n.picture = 1)"
)
# Page size of a new event file: rows (about 1 KB with the XML) are appended in batches to the table
# and five indexes, and 8 KiB pages cost about a quarter less CPU per appended row than SQLite's
# default 4 KiB (bench/event_append.py). Files created with another page size keep theirs.
PAGE_SIZE = 8192
# Page cache of the event store's connection. A batch touches the table's last pages and a leaf of
# each of five indexes, and the (lat, lon) leaves are all over the index: with SQLite's default
# 2 MB cache most of those were read back from the OS at every batch. 16 MiB kept them and cut the
# append's CPU per row by about a fifth (12.0 -> 9.6 us, half of it system time).
CACHE_KIB = 16 * 1024
# Rows per prune statement: each chunk is its own job so appends interleave with a long prune.
_PRUNE_CHUNK = 5000


class SqliteEventStore:
    """``EventStore`` in a SQLite file (WAL mode, ``synchronous=NORMAL``)."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(
            path, migrations=schema.MIGRATIONS, what="event", page_size=PAGE_SIZE, cache_kib=CACHE_KIB
        )
        self._sets = GroupSetCache()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._worker.path

    async def append(self, events: Sequence[StoredEvent]) -> None:
        """Insert a batch in one transaction."""
        if not events:
            return
        await self._run(_append, self._sets, list(events))

    async def query(self, q: HistoryQuery) -> list[StoredEvent]:
        """Events matching ``q``, ordered by (time, insertion) and limited."""
        return [ev for _, ev in await self.page(q)]

    async def page(self, q: HistoryQuery) -> list[tuple[int, StoredEvent]]:
        """Like :meth:`query`, with each row's id as its key."""
        if q.limit <= 0:
            return []
        where, params = _where(q)
        direction = "DESC" if q.order == "desc" else "ASC"
        sql = (
            f"SELECT e.id, {_COLUMNS} FROM events e WHERE {where}"
            f" ORDER BY e.time {direction}, e.id {direction} LIMIT ?"
        )
        return await self._run(_select_keyed, self._sets, sql, [*params, q.limit])

    async def latest(self, *, now_ms: int, types_prefix: tuple[str, ...] | None = None) -> list[StoredEvent]:
        """Latest live event per uid, ordered by time."""
        clauses = ["e.picture = 1", "e.stale > ?", "e.deleted = 0"]
        params: list[Any] = [now_ms]
        if types_prefix is not None:
            if not types_prefix:
                return []
            parts = []
            for prefix in types_prefix:
                part, part_params = _prefix_clause(prefix)
                parts.append(part)
                params.extend(part_params)
            clauses.append("(" + " OR ".join(parts) + ")")
        clauses.append(f"NOT {_SUPERSEDED}")
        sql = f"SELECT {_COLUMNS} FROM events e WHERE {' AND '.join(clauses)} ORDER BY e.time, e.id"
        return await self._run(_select, self._sets, sql, params)

    async def delete_uid(self, uid: str) -> None:
        """Mark the uid's latest row deleted; older rows need no mark (they are never latest)."""
        await self._run(_delete_uid, uid)

    async def prune(self, older_than_ms: int) -> int:
        """Delete old history in chunks, oldest first, keeping each uid's live latest row."""
        total = 0
        while True:
            removed = await self._run(_prune_chunk, older_than_ms, _PRUNE_CHUNK)
            total += removed
            if removed < _PRUNE_CHUNK:
                return total

    async def close(self) -> None:
        """Close the connection and let the worker thread finish."""
        await self._worker.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._worker.run(fn, *args)


def _append(db: sqlite3.Connection, sets: GroupSetCache, events: list[StoredEvent]) -> None:
    # IMMEDIATE: the batch may read group_sets before it writes; under a deferred BEGIN, another
    # process (a worker of serve --workers N, the CLI) committing in between fails the batch.
    db.execute("BEGIN IMMEDIATE")
    try:
        ids = sets.ids_for(db, {ev.groups for ev in events})
        start, left = 0, len(events)
        for size in _CHUNK_SIZES:
            sql = _INSERT[size]
            while left >= size:
                # Spelled out: building the values from attributes is the cheapest way (this is the
                # append path of every event), cheaper than msgspec's astuple plus splicing in the
                # set id; one statement's values at a time (no list of the whole batch to slice).
                values = [
                    value
                    for ev in events[start : start + size]
                    for value in (
                        ev.uid, ev.type, ev.how, ev.time, ev.start, ev.stale, ev.lat, ev.lon, ev.hae, ev.callsign,
                        ids[ev.groups], ev.team, ev.sender, ev.xml, ev.received, ev.picture, ev.exercise,
                    )
                ]  # fmt: skip
                db.execute(sql, values)
                start += size
                left -= size
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    sets.remember(ids)


def _event(db: sqlite3.Connection, sets: GroupSetCache, row: Sequence[Any]) -> StoredEvent:
    values = (*row[:_GSET], sets.groups_of(db, row[_GSET]), *row[_GSET + 1 : -2], bool(row[-2]), row[-1])
    return StoredEvent(*values)


def _select(db: sqlite3.Connection, sets: GroupSetCache, sql: str, params: Sequence[Any]) -> list[StoredEvent]:
    return [_event(db, sets, row) for row in db.execute(sql, params).fetchall()]


def _select_keyed(
    db: sqlite3.Connection, sets: GroupSetCache, sql: str, params: Sequence[Any]
) -> list[tuple[int, StoredEvent]]:
    return [(row[0], _event(db, sets, row[1:])) for row in db.execute(sql, params).fetchall()]


def _delete_uid(db: sqlite3.Connection, uid: str) -> None:
    db.execute(
        "UPDATE events SET deleted = 1 WHERE id ="
        " (SELECT id FROM events WHERE uid = ? AND picture = 1 ORDER BY time DESC, id DESC LIMIT 1)",
        (uid,),
    )


def _prune_chunk(db: sqlite3.Connection, cutoff: int, chunk: int) -> int:
    # Oldest first, so a uid's older rows always go before (or with) its latest row and a deleted
    # latest row can never expose an older row as "latest" between chunks.
    cur = db.execute(
        "DELETE FROM events WHERE id IN ("
        " SELECT e.id FROM events e WHERE e.time < ?"
        f" AND (e.picture = 0 OR e.stale <= ? OR e.deleted = 1 OR {_SUPERSEDED})"
        " ORDER BY e.time, e.id LIMIT ?)",
        (cutoff, cutoff, chunk),
    )
    return cur.rowcount


def _where(q: HistoryQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if q.since_ms is not None:
        clauses.append("e.time >= ?")
        params.append(q.since_ms)
    if q.until_ms is not None:
        clauses.append("e.time < ?")
        params.append(q.until_ms)
    if q.uid is not None:
        clauses.append("e.uid = ?")
        params.append(q.uid)
    if q.type_prefix is not None:
        clause, clause_params = _prefix_clause(q.type_prefix)
        clauses.append(clause)
        params.extend(clause_params)
    if q.bbox is not None:
        clause, clause_params = _bbox_clause(q.bbox)
        clauses.append(clause)
        params.extend(clause_params)
    if q.reader is not None:
        clause, clause_params = _reader_clause(q.reader)
        clauses.append(clause)
        params.extend(clause_params)
    if q.exercise == EXERCISE_NONE:
        clauses.append("e.exercise IS NULL")
    elif q.exercise != EXERCISE_ANY:
        clauses.append("e.exercise = ?")
        params.append(q.exercise)
    if q.after is not None:
        # Keyset paging: strictly after (time, id) in the query's order.
        op = "<" if q.order == "desc" else ">"
        clauses.append(f"(e.time {op} ? OR (e.time = ? AND e.id {op} ?))")
        params.extend([q.after[0], q.after[0], q.after[1]])
    return (" AND ".join(clauses) or "1"), params


def _reader_clause(reader: HistoryReader) -> tuple[str, list[Any]]:
    """``base.readable`` in SQL: a row's ``gset`` names its broadcast groups, ``EMPTY_SET`` when addressed.

    The subquery does not depend on the row, so SQLite evaluates it once per query (an exact lookup
    in the ``group_set_members`` primary key) and tests each row's ``gset`` against the result.
    """
    addressed = f"e.gset = {EMPTY_SET}"
    params: list[Any] = []
    if reader.groups:
        marks = ", ".join("?" for _ in reader.groups)
        params.extend(sorted(reader.groups))
        broadcast = f"e.gset IN (SELECT set_id FROM group_set_members WHERE grp IN ({marks}))"
    else:
        broadcast = "0"
    if reader.all_addressed:
        mine = addressed
    elif reader.sender is not None:
        mine = f"({addressed} AND e.sender = ?)"
        params.append(reader.sender)
    else:
        mine = "0"
    return f"({broadcast} OR {mine})", params


def _prefix_clause(prefix: str) -> tuple[str, list[Any]]:
    """A prefix test the ``type`` index can serve: a half-open range of strings."""
    if not prefix:
        return "1", []
    upper = prefix_upper_bound(prefix)
    if upper is None:
        # No successor character: fall back to an exact (unindexed) prefix comparison.
        return "substr(e.type, 1, ?) = ?", [len(prefix), prefix]
    return "(e.type >= ? AND e.type < ?)", [prefix, upper]


def _bbox_clause(bbox: BBox) -> tuple[str, list[Any]]:
    """``base.in_bbox`` in SQL; no-fix rows (0,0, ``model.fix``) are in no area."""
    min_lon, min_lat, max_lon, max_lat = bbox
    located = "NOT (e.lat = 0 AND e.lon = 0)"
    if min_lon <= max_lon:
        return (f"(e.lat BETWEEN ? AND ? AND e.lon BETWEEN ? AND ? AND {located})",
                [min_lat, max_lat, min_lon, max_lon])
    # Crosses the antimeridian.
    return (f"(e.lat BETWEEN ? AND ? AND (e.lon >= ? OR e.lon <= ?) AND {located})",
            [min_lat, max_lat, min_lon, max_lon])
