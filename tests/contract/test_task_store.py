"""TaskRecords contract: what ``services.tasks`` relies on, on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from rallypoint.model.task import Assignee, Task, TaskPoint, TaskState, alerted, moved
from rallypoint.storage.base.tasks import TaskQuery, TaskRecords
from tests.contract.conftest import _backends, stores_for


@pytest.fixture(params=_backends("tasks"))
async def task_records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TaskRecords]:
    backend = (await stores_for(request, tmp_path)).tasks()
    try:
        yield backend
    finally:
        await backend.close()


def task(n: int, *, assignee: Assignee | None = None, mission: str | None = None) -> Task:
    return Task(
        id=f"task-{n:03d}", what=f"search sector {n}", assignee=assignee or Assignee(callsign="ALPHA"),
        creator="alice", created_ms=1000 + n, updated_ms=1000 + n, where=TaskPoint(39.1, -120.0, 1900.0),
        due_ms=None, mission=mission, creator_uid="uid-alice", groups=("Red",),
    )


async def test_a_task_reads_back_as_written_and_ids_are_unique(task_records: TaskRecords) -> None:
    first = task(1)
    assert await task_records.insert(first)
    assert not await task_records.insert(task(1, mission="other"))
    assert await task_records.get("task-001") == first
    assert await task_records.get("task-404") is None


async def test_replace_is_compare_and_set_on_the_version(task_records: TaskRecords) -> None:
    first = task(1)
    await task_records.insert(first)
    acked = moved(first, TaskState.ACKNOWLEDGED, by="ALPHA", at_ms=2000, via="cot", note="on it")
    assert await task_records.replace(acked, expected_version=1)
    # A second writer that also started from version 1 loses.
    started = moved(first, TaskState.IN_PROGRESS, by="bob", at_ms=2001, via="api")
    assert not await task_records.replace(started, expected_version=1)
    assert await task_records.get(first.id) == acked
    marked = alerted(acked, 3000)
    assert await task_records.replace(marked, expected_version=2)
    got = await task_records.get(first.id)
    assert got is not None and got.overdue_alerted and got.version == 3 and got.history[0].note == "on it"
    assert not await task_records.replace(task(9), expected_version=1)  # unknown id


async def test_query_filters_and_orders_newest_first(task_records: TaskRecords) -> None:
    await task_records.insert(task(1))
    await task_records.insert(task(2, assignee=Assignee(group="Blue"), mission="sweep"))
    await task_records.insert(task(3, assignee=Assignee(uid="uid-bravo"), mission="sweep"))
    done = moved(task(4), TaskState.DONE, by="ALPHA", at_ms=5000, via="chat")
    await task_records.insert(task(4))
    await task_records.replace(done, expected_version=1)
    assert [t.id for t in await task_records.query(TaskQuery())] == ["task-004", "task-003", "task-002", "task-001"]
    assert [t.id for t in await task_records.query(TaskQuery(mission="sweep"))] == ["task-003", "task-002"]
    assert [t.id for t in await task_records.query(TaskQuery(assignee="ALPHA"))] == ["task-004", "task-001"]
    assert [t.id for t in await task_records.query(TaskQuery(assignee="Blue"))] == ["task-002"]
    assert [t.id for t in await task_records.query(TaskQuery(state=TaskState.DONE))] == ["task-004"]
    assert [t.id for t in await task_records.query(TaskQuery(state=TaskState.ASSIGNED, assignee="ALPHA"))] == [
        "task-001"]
    assert len(await task_records.query(TaskQuery(limit=2))) == 2


async def test_open_tasks_leave_out_final_ones_oldest_first(task_records: TaskRecords) -> None:
    for n in (3, 1, 2):
        await task_records.insert(task(n))
    cancelled = moved(task(2), TaskState.CANCELLED, by="alice", at_ms=9000, via="api")
    assert await task_records.replace(cancelled, expected_version=1)
    assert [t.id for t in await task_records.open_tasks()] == ["task-001", "task-003"]


async def test_a_list_continues_after_a_given_task(task_records: TaskRecords) -> None:
    for n in range(1, 6):
        await task_records.insert(task(n))
    same_time = msgspec.structs.replace(task(9), id="task-006", created_ms=1005)  # as old as task-005
    await task_records.insert(same_time)
    first = await task_records.query(TaskQuery(limit=2))
    assert [t.id for t in first] == ["task-006", "task-005"]
    rest = await task_records.query(TaskQuery(limit=10, before=(first[-1].created_ms, first[-1].id)))
    assert [t.id for t in rest] == ["task-004", "task-003", "task-002", "task-001"]
    after_six = await task_records.query(TaskQuery(limit=10, before=(1005, "task-006")))
    assert [t.id for t in after_six][:1] == ["task-005"]
