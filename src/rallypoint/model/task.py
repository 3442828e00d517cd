"""Tasks: a piece of work (what, where, by when) handed to a unit or a team, and its lifecycle.

States and the moves between them (``TRANSITIONS``)::

    assigned ──► acknowledged ──► in_progress ──► done
        │             │                 │       ► failed
        │             │                 │       ► cancelled
        └─────────────┴─► (any later state, skipping steps)

``done``, ``failed`` and ``cancelled`` are final. Who may make which move is the service's rule
(``services.tasks_rules``); this module only knows which moves exist.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import msgspec

MAX_WHAT = 500
MAX_DETAILS = 4000
MAX_NOTE = 500
MAX_NAME = 128
# 2000-01-01 .. 2100-01-01: a due time outside this is a mistake, not a plan.
MIN_DUE_MS = 946_684_800_000
MAX_DUE_MS = 4_102_444_800_000

Lat = Annotated[float, msgspec.Meta(ge=-90, le=90, description="WGS-84 latitude, degrees")]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180, description="WGS-84 longitude, degrees")]
Hae = Annotated[float, msgspec.Meta(ge=-1000, le=100_000, description="Height above the ellipsoid, metres")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
Note = Annotated[str, msgspec.Meta(max_length=MAX_NOTE)]
Details = Annotated[str, msgspec.Meta(max_length=MAX_DETAILS, description="How, in more words (optional)")]
Priority = Annotated[int, msgspec.Meta(ge=1, le=5, description="1 most urgent ... 5; default 3")]
DueMs = Annotated[int, msgspec.Meta(ge=MIN_DUE_MS, le=MAX_DUE_MS, description="Epoch milliseconds, UTC")]
Via = Literal["api", "cot", "chat", "server"]


class TaskState(StrEnum):
    """Where a task stands."""

    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED})
OPEN = frozenset(TaskState) - FINAL
_ENDINGS = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED})
TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.ASSIGNED: frozenset({TaskState.ACKNOWLEDGED, TaskState.IN_PROGRESS}) | _ENDINGS,
    TaskState.ACKNOWLEDGED: frozenset({TaskState.IN_PROGRESS}) | _ENDINGS,
    TaskState.IN_PROGRESS: _ENDINGS,
    TaskState.DONE: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


class TaskPoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the work is (NaN and infinities are refused by the bounds)."""

    lat: Lat
    lon: Lon
    hae: Hae = 0.0


class Assignee(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who does it: exactly one of a client uid, a callsign or a group (team)."""

    uid: Name | None = None
    callsign: Name | None = None
    group: Name | None = None

    @property
    def kind(self) -> str:
        """``uid``, ``callsign`` or ``group``."""
        return "uid" if self.uid is not None else "callsign" if self.callsign is not None else "group"

    @property
    def name(self) -> str:
        """The uid, callsign or group name."""
        return self.uid or self.callsign or self.group or ""

    def is_valid(self) -> bool:
        """Exactly one of the three is given."""
        return sum(v is not None for v in (self.uid, self.callsign, self.group)) == 1


class TaskStep(msgspec.Struct, frozen=True):
    """One change of state: to what, by whom, when, how it arrived, with the actor's note."""

    state: TaskState
    by: str
    at_ms: int
    via: Via
    note: str = ""


class Task(msgspec.Struct, frozen=True):
    """One task as stored and answered. ``version`` grows by one with every change."""

    id: str
    what: str
    assignee: Assignee
    creator: str
    created_ms: int
    updated_ms: int
    state: TaskState = TaskState.ASSIGNED
    version: int = 1
    where: TaskPoint | None = None
    due_ms: int | None = None
    mission: str | None = None
    # Added after the first stored tasks: their defaults read older stored bodies as they were.
    details: str = ""
    priority: int = 3
    # The TAK client uid told about changes and overdue alerts (the creator's device), if any.
    creator_uid: str | None = None
    # The groups the creator wrote to: who may read the task besides its creator and assignee.
    groups: tuple[str, ...] = ()
    history: tuple[TaskStep, ...] = ()
    overdue_alerted: bool = False

    @property
    def is_open(self) -> bool:
        """Not yet done, failed or cancelled."""
        return self.state in OPEN

    def is_overdue(self, now_ms: int) -> bool:
        """Open and past its due time."""
        return self.is_open and self.due_ms is not None and now_ms >= self.due_ms


class TransitionRefused(ValueError):
    """A move the lifecycle does not have (``done`` → ``in_progress``, anything out of a final state)."""

    def __init__(self, current: TaskState, wanted: TaskState) -> None:
        super().__init__(f"a task {current.value} cannot become {wanted.value}")
        self.current = current
        self.wanted = wanted


def can_move(current: TaskState, wanted: TaskState) -> bool:
    """Whether the lifecycle has the move ``current`` → ``wanted``."""
    return wanted in TRANSITIONS[current]


def moved(task: Task, wanted: TaskState, *, by: str, at_ms: int, via: Via, note: str = "") -> Task:
    """``task`` in state ``wanted``, the step appended and the version bumped; ``TransitionRefused`` if not a move."""
    if not can_move(task.state, wanted):
        raise TransitionRefused(task.state, wanted)
    step = TaskStep(state=wanted, by=by, at_ms=at_ms, via=via, note=note)
    return msgspec.structs.replace(
        task, state=wanted, version=task.version + 1, updated_ms=at_ms, history=(*task.history, step)
    )


def alerted(task: Task, at_ms: int) -> Task:
    """``task`` marked as overdue-alerted (once), the version bumped."""
    return msgspec.structs.replace(task, overdue_alerted=True, version=task.version + 1, updated_ms=at_ms)


What = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_WHAT, description="What to do")]


class TaskRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A new task (``POST /api/tasks``): what, to whom, optionally details, priority, where, by when and in which
    mission.

    ``notify_uid`` is the creator's TAK client uid: it gets the task's changes and the overdue alert.
    """

    what: What
    assignee: Assignee
    where: TaskPoint | None = None
    due_ms: DueMs | None = None
    mission: Name | None = None
    notify_uid: Name | None = None
    details: Details = ""
    priority: Priority = 3


class StatusChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A move (``POST /api/tasks/{id}/status``): the state wanted and a note for the history."""

    state: TaskState
    note: Note = ""
