"""What a task store keeps: tasks (``model.task``) by id, changed only by compare-and-set on ``version``.

Every node reads and writes the same rows (``--storage postgresql://``); a change is written with
:meth:`TaskRecords.replace` naming the version it was made from, so of two nodes changing one task
at once exactly one wins and the other re-reads. Lists come newest first.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from rallypoint.model.task import Task, TaskState

MAX_LIMIT = 5000


class TaskQuery(msgspec.Struct, frozen=True):
    """Filters of a list: state, assignee (its uid, callsign or group name), mission; at most ``limit`` rows.

    ``before`` (created_ms, id) continues a list: only tasks listed after that one (older, or as old
    with a smaller id).
    """

    state: TaskState | None = None
    assignee: str | None = None
    mission: str | None = None
    limit: int = 1000
    before: tuple[int, str] | None = None


class TaskRecords(Protocol):
    """Task rows."""

    async def insert(self, task: Task) -> bool:
        """Store a new task; False (nothing written) when its id exists."""
        ...

    async def get(self, task_id: str) -> Task | None:
        """The task with this id, or None."""
        ...

    async def replace(self, task: Task, *, expected_version: int) -> bool:
        """Write ``task`` over the stored row if that row is still at ``expected_version``; False otherwise."""
        ...

    async def query(self, query: TaskQuery) -> list[Task]:
        """Tasks matching every filter given, newest first, at most ``query.limit``."""
        ...

    async def open_tasks(self) -> list[Task]:
        """Every task not yet done, failed or cancelled, oldest first."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
