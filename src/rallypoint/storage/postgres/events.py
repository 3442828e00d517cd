"""PostgreSQL event store: the shared history of several nodes (``--storage postgresql://...``).

Implements the whole ``EventStore`` contract of ``storage.base``; the schema and its indexes are
described in ``storage.postgres.schema``, the area index (PostGIS or not) in
``storage.postgres.spatial``. Every operation is idempotent, so each is retried after a lost
connection (``PostgresPool.retrying``); an append carries a batch id for that.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from rallypoint.storage.base import (
    EXERCISE_ANY,
    EXERCISE_NONE,
    HistoryQuery,
    HistoryReader,
    StoredEvent,
    prefix_upper_bound,
)
from rallypoint.storage.postgres import schema, spatial
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy

_FIELDS = ("uid", "type", "how", "time", "start", "stale", "lat", "lon", "hae", "callsign", "groups", "team",
           "sender", "xml", "received", "picture", "exercise")
_COLUMNS = ", ".join(_FIELDS)
_GROUPS = _FIELDS.index("groups")
_SUPERSEDED = (
    "EXISTS (SELECT 1 FROM events n WHERE n.picture AND n.uid = e.uid AND n.time >= e.time"
    " AND (n.time > e.time OR n.id > e.id))"
)
_PRUNE_CHUNK = 5000
# How long a batch id is remembered: far longer than any retry sequence.
_BATCH_MEMORY = "interval '1 hour'"


class PostgresEventStore:
    """``EventStore`` in a PostgreSQL database reached through an asyncpg pool."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 4) -> None:
        self._pool = PostgresPool(
            dsn, migrations=schema.MIGRATIONS, lock_key=schema.LOCK_KEY, what="event",
            max_size=max_connections, retry=retry, prepare=self._prepare,
            # Queries of one shape (a history page) differ wildly in how many rows their values select
            # (a street or a continent): plan each with its values, not once generically.
            server_settings={"plan_cache_mode": "force_custom_plan"},
        )
        self._area: spatial.AreaIndex = "bbox"

    async def _prepare(self, conn: asyncpg.Connection) -> frozenset[str]:
        features, self._area = await spatial.prepare(conn, self._pool.options.postgis)
        return features

    @property
    def area_index(self) -> spatial.AreaIndex:
        """``postgis`` or ``bbox``: the index serving area queries (known once the store has opened)."""
        return self._area

    @property
    def retries(self) -> int:
        """Operations retried after a lost connection so far."""
        return self._pool.retries

    async def append(self, events: Sequence[StoredEvent]) -> None:
        """Insert a batch in one transaction; a retry of a batch that already committed writes nothing."""
        if not events:
            return
        batch = uuid.uuid4()
        records = [_record(ev) for ev in events]

        async def op(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                fresh = await conn.fetchval(
                    "INSERT INTO event_batches (batch) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", batch
                )
                if fresh:
                    await conn.copy_records_to_table("events", records=records, columns=_FIELDS)

        await self._pool.retrying(op, name="append")

    async def query(self, q: HistoryQuery) -> list[StoredEvent]:
        """Events matching ``q``, ordered by (time, id) and limited."""
        return [ev for _, ev in await self.page(q)]

    async def page(self, q: HistoryQuery) -> list[tuple[int, StoredEvent]]:
        """Like :meth:`query`, with each row's id as its key."""
        if q.limit <= 0:
            return []
        direction = "DESC" if q.order == "desc" else "ASC"

        async def op(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            # Built once the pool is open: the area index is known then.
            where, params = _where(q, self._area)
            params.append(q.limit)
            sql = (
                f"SELECT e.id, {_COLUMNS} FROM events e WHERE {where}"
                f" ORDER BY e.time {direction}, e.id {direction} LIMIT ${len(params)}"
            )
            rows: list[asyncpg.Record] = await conn.fetch(sql, *params)
            return rows

        rows = await self._pool.retrying(op, name="query")
        return [(row[0], _event(row[1:])) for row in rows]

    async def latest(self, *, now_ms: int, types_prefix: tuple[str, ...] | None = None) -> list[StoredEvent]:
        """Latest live picture row per uid, ordered by time."""
        params: list[Any] = [now_ms]
        clauses = ["e.picture", "NOT e.deleted", "e.stale > $1"]
        if types_prefix is not None:
            if not types_prefix:
                return []
            clauses.append("(" + " OR ".join(_prefix_clause(p, params) for p in types_prefix) + ")")
        clauses.append(f"NOT {_SUPERSEDED}")
        sql = f"SELECT {_COLUMNS} FROM events e WHERE {' AND '.join(clauses)} ORDER BY e.time, e.id"
        rows = await self._pool.retrying(lambda conn: conn.fetch(sql, *params), name="latest")
        return [_event(row) for row in rows]

    async def delete_uid(self, uid: str) -> None:
        """Mark the uid's latest picture row deleted (marking it twice changes nothing)."""
        await self._pool.retrying(
            lambda conn: conn.execute(
                "UPDATE events SET deleted = true WHERE id ="
                " (SELECT id FROM events WHERE uid = $1 AND picture ORDER BY time DESC, id DESC LIMIT 1)",
                uid,
            ),
            name="delete_uid",
        )

    async def prune(self, older_than_ms: int) -> int:
        """Delete old history in chunks, oldest first, keeping each uid's live latest picture row."""
        total = 0
        while True:
            status = await self._pool.retrying(
                lambda conn: conn.execute(
                    "DELETE FROM events WHERE id IN ("
                    " SELECT e.id FROM events e WHERE e.time < $1"
                    f" AND (NOT e.picture OR e.stale <= $1 OR e.deleted OR {_SUPERSEDED})"
                    " ORDER BY e.time, e.id LIMIT $2)",
                    older_than_ms, _PRUNE_CHUNK,
                ),
                name="prune",
            )
            removed = int(status.split()[-1])
            total += removed
            if removed < _PRUNE_CHUNK:
                break
        await self._pool.retrying(
            lambda conn: conn.execute(f"DELETE FROM event_batches WHERE written_at < now() - {_BATCH_MEMORY}"),
            name="prune",
        )
        return total

    async def close(self) -> None:
        """Close the pool, waiting for operations in flight."""
        await self._pool.close()


def _record(ev: StoredEvent) -> tuple[Any, ...]:
    values = tuple(getattr(ev, f) for f in _FIELDS)
    return (*values[:_GROUPS], sorted(values[_GROUPS]), *values[_GROUPS + 1 :])


def _event(row: Sequence[Any]) -> StoredEvent:
    values = (*row[:_GROUPS], frozenset(row[_GROUPS]), *row[_GROUPS + 1 :])
    return StoredEvent(*values)


def _param(params: list[Any], value: Any) -> str:
    params.append(value)
    return f"${len(params)}"


def _where(q: HistoryQuery, area: spatial.AreaIndex = "bbox") -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if q.since_ms is not None:
        clauses.append(f"e.time >= {_param(params, q.since_ms)}")
    if q.until_ms is not None:
        clauses.append(f"e.time < {_param(params, q.until_ms)}")
    if q.uid is not None:
        clauses.append(f"e.uid = {_param(params, q.uid)}")
    if q.type_prefix is not None:
        clauses.append(_prefix_clause(q.type_prefix, params))
    if q.bbox is not None:
        clauses.append(spatial.bbox_clause(q.bbox, params, _param, area))
    if q.reader is not None:
        clauses.append(_reader_clause(q.reader, params))
    if q.exercise == EXERCISE_NONE:
        clauses.append("e.exercise IS NULL")
    elif q.exercise != EXERCISE_ANY:
        clauses.append(f"e.exercise = {_param(params, q.exercise)}")
    if q.after is not None:
        # Keyset paging: strictly after (time, id) in the query's order.
        op = "<" if q.order == "desc" else ">"
        clauses.append(f"(e.time, e.id) {op} ({_param(params, q.after[0])}, {_param(params, q.after[1])})")
    return (" AND ".join(clauses) or "true"), params


def _prefix_clause(prefix: str, params: list[Any]) -> str:
    """A prefix test the ``type`` index ("C" collation: code point order) can serve."""
    if not prefix:
        return "true"
    upper = prefix_upper_bound(prefix)
    if upper is None:
        return f"starts_with(e.type, {_param(params, prefix)})"
    return f"(e.type >= {_param(params, prefix)} AND e.type < {_param(params, upper)})"


def _reader_clause(reader: HistoryReader, params: list[Any]) -> str:
    """``base.readable`` in SQL: broadcast rows sharing a group, addressed rows (no groups) by rule."""
    addressed = "cardinality(e.groups) = 0"
    broadcast = f"e.groups && {_param(params, sorted(reader.groups))}::text[]" if reader.groups else "false"
    if reader.all_addressed:
        mine = addressed
    elif reader.sender is not None:
        mine = f"({addressed} AND e.sender = {_param(params, reader.sender)})"
    else:
        mine = "false"
    return f"({broadcast} OR {mine})"
