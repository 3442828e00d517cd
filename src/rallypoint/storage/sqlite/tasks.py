"""SQLite task rows (``DATA_DIR/tasks.db``): the task as JSON plus the columns lists filter on."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from rallypoint.model.task import OPEN, Task
from rallypoint.storage.base.tasks import TaskQuery
from rallypoint.storage.sqlite.worker import SqliteWorker

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tasks (
        id          TEXT    NOT NULL PRIMARY KEY,
        state       TEXT    NOT NULL,
        assignee    TEXT    NOT NULL,
        mission     TEXT,
        created_ms  INTEGER NOT NULL,
        version     INTEGER NOT NULL,
        body        BLOB    NOT NULL
    );
    CREATE INDEX tasks_state ON tasks (state, created_ms);
    CREATE INDEX tasks_assignee ON tasks (assignee, created_ms);
    CREATE INDEX tasks_mission ON tasks (mission, created_ms);
    CREATE INDEX tasks_created ON tasks (created_ms);
    """,
)
_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(Task).decode
_OPEN = tuple(sorted(s.value for s in OPEN))


class SqliteTaskRecords:
    """``TaskRecords`` in a SQLite file; one worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="task")

    async def insert(self, task: Task) -> bool:
        """Store a new task; False when its id exists."""
        return await self._worker.run(_insert, task, _ENCODE(task))

    async def get(self, task_id: str) -> Task | None:
        """The task with this id, or None."""
        return await self._worker.run(_get, task_id)

    async def replace(self, task: Task, *, expected_version: int) -> bool:
        """Compare-and-set on the stored version."""
        return await self._worker.run(_replace, task, _ENCODE(task), expected_version)

    async def query(self, query: TaskQuery) -> list[Task]:
        """Matching tasks, newest first."""
        return await self._worker.run(_query, query)

    async def open_tasks(self) -> list[Task]:
        """Open tasks, oldest first."""
        return await self._worker.run(_open_tasks)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _insert(db: sqlite3.Connection, t: Task, body: bytes) -> bool:
    cur = db.execute(
        "INSERT OR IGNORE INTO tasks (id, state, assignee, mission, created_ms, version, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (t.id, t.state.value, t.assignee.name, t.mission, t.created_ms, t.version, body),
    )
    return cur.rowcount > 0


def _get(db: sqlite3.Connection, task_id: str) -> Task | None:
    row = db.execute("SELECT body FROM tasks WHERE id = ?", (task_id,)).fetchone()
    return None if row is None else _DECODE(row[0])


def _replace(db: sqlite3.Connection, t: Task, body: bytes, expected: int) -> bool:
    cur = db.execute(
        "UPDATE tasks SET state = ?, assignee = ?, mission = ?, version = ?, body = ? WHERE id = ? AND version = ?",
        (t.state.value, t.assignee.name, t.mission, t.version, body, t.id, expected),
    )
    return cur.rowcount > 0


def _query(db: sqlite3.Connection, q: TaskQuery) -> list[Task]:
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("state", q.state.value if q.state else None), ("assignee", q.assignee),
                          ("mission", q.mission)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if q.before is not None:
        where.append("(created_ms < ? OR (created_ms = ? AND id < ?))")
        args.extend((q.before[0], q.before[0], q.before[1]))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(
        f"SELECT body FROM tasks{clause} ORDER BY created_ms DESC, id DESC LIMIT ?", (*args, q.limit)
    ).fetchall()
    return [_DECODE(r[0]) for r in rows]


def _open_tasks(db: sqlite3.Connection) -> list[Task]:
    marks = ", ".join("?" * len(_OPEN))
    rows = db.execute(f"SELECT body FROM tasks WHERE state IN ({marks}) ORDER BY created_ms, id", _OPEN).fetchall()
    return [_DECODE(r[0]) for r in rows]
