"""ExerciseRecords contract: the same suite over SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from rallypoint.model.exercise_control import Command, Exercise
from rallypoint.storage.base.exercises import ExerciseRecords
from tests.contract.conftest import _backends, stores_for


@pytest.fixture(params=_backends("exercises"))
async def exercise_records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ExerciseRecords]:
    backend = (await stores_for(request, tmp_path)).exercises()
    try:
        yield backend
    finally:
        await backend.close()


def _exercise(exercise_id: str, *, created: int = 1_000) -> Exercise:
    return Exercise(id=exercise_id, name=f"Drill {exercise_id}", scenario_sha256="a" * 64, units=20,
                    injects=["cas", "link"], speed=1.0, missions=["train"], created_at=created, updated_at=created,
                    controller="alice", groups=["Blue"])


async def test_insert_get_replace(exercise_records: ExerciseRecords) -> None:
    assert await exercise_records.get("x") is None
    first = _exercise("x")
    assert await exercise_records.insert(first) is True
    assert await exercise_records.insert(_exercise("x", created=5)) is False
    assert await exercise_records.get("x") == first
    running = msgspec.structs.replace(first, state="running", clock_s=12.5, sent=40, version=2)
    assert await exercise_records.replace(running, expected_version=1) is True
    assert await exercise_records.replace(msgspec.structs.replace(first, version=2), expected_version=1) is False
    assert await exercise_records.get("x") == running


async def test_all_newest_first(exercise_records: ExerciseRecords) -> None:
    for exercise_id, created in (("old", 1), ("new", 3), ("mid", 2)):
        await exercise_records.insert(_exercise(exercise_id, created=created))
    assert [e.id for e in await exercise_records.all()] == ["new", "mid", "old"]


async def test_commands_are_numbered_per_exercise_without_gaps(exercise_records: ExerciseRecords) -> None:
    await exercise_records.insert(_exercise("a"))
    await exercise_records.insert(_exercise("b"))
    assert await exercise_records.add_command("none", Command(seq=0, action="start")) is None
    # Concurrent appends still get 1..N, each once.
    seqs = await asyncio.gather(*(exercise_records.add_command("a", Command(seq=0, action="inject", inject="cas",
                                                                             by="alice", at=i))
                                  for i in range(8)))
    assert sorted(seqs) == list(range(1, 9))  # type: ignore[type-var]
    assert await exercise_records.add_command("b", Command(seq=0, action="speed", speed=4.0)) == 1
    listed = await exercise_records.commands("a", after=0)
    assert [c.seq for c in listed] == list(range(1, 9))
    assert {c.at for c in listed} == set(range(8))
    assert [c.seq for c in await exercise_records.commands("a", after=6)] == [7, 8]
    assert [c.seq for c in await exercise_records.commands("a", after=2, limit=2)] == [3, 4]
    assert await exercise_records.commands("b", after=0) == [Command(seq=1, action="speed", speed=4.0)]
    stored = await exercise_records.get("a")
    assert stored is not None and stored.last_seq == 8
    # A replace keeps the command counter (it belongs to the log, not to the document).
    assert await exercise_records.replace(msgspec.structs.replace(stored, state="paused", version=2),
                                          expected_version=1)
    again = await exercise_records.get("a")
    assert again is not None and again.last_seq == 8 and again.state == "paused"
