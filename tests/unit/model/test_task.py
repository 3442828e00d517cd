"""The task lifecycle: which moves exist, what a move records, what the request refuses."""

from __future__ import annotations

import math

import msgspec
import pytest

from rallypoint.model.task import (
    FINAL,
    TRANSITIONS,
    Assignee,
    Task,
    TaskRequest,
    TaskState,
    TransitionRefused,
    can_move,
    moved,
)


def task(**changes: object) -> Task:
    base = Task(id="t1", what="sweep sector B", assignee=Assignee(callsign="ALPHA"), creator="alice",
                created_ms=1000, updated_ms=1000)
    return msgspec.structs.replace(base, **changes)


def test_the_forward_path_and_its_shortcuts_exist() -> None:
    assert can_move(TaskState.ASSIGNED, TaskState.ACKNOWLEDGED)
    assert can_move(TaskState.ACKNOWLEDGED, TaskState.IN_PROGRESS)
    assert can_move(TaskState.IN_PROGRESS, TaskState.DONE)
    assert can_move(TaskState.ASSIGNED, TaskState.IN_PROGRESS)
    for state in (TaskState.ASSIGNED, TaskState.ACKNOWLEDGED, TaskState.IN_PROGRESS):
        assert {TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED} <= TRANSITIONS[state]


def test_no_move_goes_back_or_out_of_a_final_state() -> None:
    assert not can_move(TaskState.IN_PROGRESS, TaskState.ACKNOWLEDGED)
    assert not can_move(TaskState.ACKNOWLEDGED, TaskState.ASSIGNED)
    for state in FINAL:
        assert TRANSITIONS[state] == frozenset()
    for state in TaskState:
        assert not can_move(state, state)


def test_a_move_appends_history_and_bumps_the_version() -> None:
    acked = moved(task(), TaskState.ACKNOWLEDGED, by="ALPHA", at_ms=2000, via="chat", note="on my way")
    assert acked.state is TaskState.ACKNOWLEDGED and acked.version == 2 and acked.updated_ms == 2000
    assert acked.history[-1].by == "ALPHA" and acked.history[-1].via == "chat" and acked.history[-1].note == "on my way"
    with pytest.raises(TransitionRefused, match="done cannot become in_progress"):
        moved(moved(acked, TaskState.DONE, by="x", at_ms=3, via="api"), TaskState.IN_PROGRESS, by="x", at_ms=4,
              via="api")


def test_overdue_only_while_open_and_past_due() -> None:
    due = task(due_ms=5000)
    assert not due.is_overdue(4999)
    assert due.is_overdue(5000)
    assert not task().is_overdue(10**12)
    assert not moved(due, TaskState.DONE, by="x", at_ms=1, via="api").is_overdue(6000)


@pytest.mark.parametrize("body", [
    b'{"what": "", "assignee": {"callsign": "A"}}',
    b'{"what": "x", "assignee": {"callsign": "A"}, "where": {"lat": 91, "lon": 0}}',
    b'{"what": "x", "assignee": {"callsign": "A"}, "where": {"lat": 1e308, "lon": 0}}',
    b'{"what": "x", "assignee": {"callsign": "A"}, "where": {"lat": 0, "lon": 0, "hae": -5000}}',
    b'{"what": "x", "assignee": {"callsign": "A"}, "due_ms": -1}',
    b'{"what": "x", "assignee": {"callsign": "A"}, "due_ms": 1000000000000000000}',
    b'{"what": "x", "assignee": {"callsign": "A"}, "extra": 1}',
    b'{"what": "' + b"x" * 501 + b'", "assignee": {"callsign": "A"}}',
])
def test_the_request_refuses_absurd_values(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=TaskRequest)


def test_nan_is_refused_even_when_it_gets_past_json() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"what": "x", "assignee": {"uid": "u"}, "where": {"lat": math.nan, "lon": 0.0}},
                        TaskRequest)
