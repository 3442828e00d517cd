"""PostgreSQL task rows shared by every node (``--storage postgresql://...``), migration family ``tasks``.

Reads and inserts are retried after a lost connection (an insert retried after it committed finds
its id and reports False, which the service treats as written by itself only when the row matches);
a compare-and-set runs once, since a retry after an unseen commit would report a conflict.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rallypoint.model.task import OPEN, Task
from rallypoint.storage.base.tasks import TaskQuery
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy, rows_affected

# pg_advisory_lock key for the task store's migrations ("RP_TASKS", stable forever).
LOCK_KEY = 0x52505F5441534B53
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "tasks",
        """
        CREATE TABLE tasks (
            id          text PRIMARY KEY,
            state       text NOT NULL,
            assignee    text NOT NULL,
            mission     text,
            created_ms  bigint NOT NULL,
            version     integer NOT NULL,
            body        bytea NOT NULL
        );
        CREATE INDEX tasks_state ON tasks (state, created_ms);
        CREATE INDEX tasks_assignee ON tasks (assignee, created_ms);
        CREATE INDEX tasks_mission ON tasks (mission, created_ms);
        CREATE INDEX tasks_created ON tasks (created_ms);
        """,
    ),
)
_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(Task).decode
_OPEN = sorted(s.value for s in OPEN)


class PostgresTaskRecords:
    """``TaskRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="tasks",
                                  max_size=max_connections, retry=retry)

    async def insert(self, task: Task) -> bool:
        """Store a new task; False when its id exists."""
        t, body = task, _ENCODE(task)
        status = await self._pool.retrying(
            lambda conn: conn.execute(
                "INSERT INTO tasks (id, state, assignee, mission, created_ms, version, body)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                t.id, t.state.value, t.assignee.name, t.mission, t.created_ms, t.version, body,
            ),
            name="insert",
        )
        return rows_affected(status) > 0

    async def get(self, task_id: str) -> Task | None:
        """The task with this id, or None."""
        row = await self._pool.retrying(
            lambda conn: conn.fetchrow("SELECT body FROM tasks WHERE id = $1", task_id), name="get"
        )
        return None if row is None else _DECODE(row[0])

    async def replace(self, task: Task, *, expected_version: int) -> bool:
        """Compare-and-set on the stored version."""
        t, body = task, _ENCODE(task)
        status = await self._pool.once(
            lambda conn: conn.execute(
                "UPDATE tasks SET state = $2, assignee = $3, mission = $4, version = $5, body = $6"
                " WHERE id = $1 AND version = $7",
                t.id, t.state.value, t.assignee.name, t.mission, t.version, body, expected_version,
            ),
            name="replace",
        )
        return rows_affected(status) > 0

    async def query(self, query: TaskQuery) -> list[Task]:
        """Matching tasks, newest first."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("state", query.state.value if query.state else None),
                              ("assignee", query.assignee), ("mission", query.mission)):
            if value is not None:
                args.append(value)
                where.append(f"{column} = ${len(args)}")
        if query.before is not None:
            args.extend(query.before)
            where.append(f"(created_ms < ${len(args) - 1} OR (created_ms = ${len(args) - 1} AND id < ${len(args)}))")
        args.append(query.limit)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT body FROM tasks{clause} ORDER BY created_ms DESC, id DESC LIMIT ${len(args)}"
        rows = await self._pool.retrying(lambda conn: conn.fetch(sql, *args), name="query")
        return [_DECODE(r[0]) for r in rows]

    async def open_tasks(self) -> list[Task]:
        """Open tasks, oldest first."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                "SELECT body FROM tasks WHERE state = ANY($1::text[]) ORDER BY created_ms, id", _OPEN
            ),
            name="open_tasks",
        )
        return [_DECODE(r[0]) for r in rows]

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()
