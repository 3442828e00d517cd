"""A registered exercise and the commands its controller sends the runner (docs/exercises.md).

Pure rules, no I/O: which control action is allowed in which state, what state it leads to, and
the limits of what a runner may register. ``services.exercises`` applies them over a store.
"""

from __future__ import annotations

from typing import Literal, cast

import msgspec

from rallypoint.model.exercise import RESERVED_IDS, valid_exercise_id

State = Literal["ready", "running", "paused", "stopped"]
Action = Literal["start", "pause", "resume", "stop", "inject", "speed"]
ACTIONS: tuple[str, ...] = ("start", "pause", "resume", "stop", "inject", "speed")
MIN_SPEED = 1.0
MAX_SPEED = 10.0
MAX_INJECTS = 10_000
MAX_UNITS = 100_000
MAX_MISSIONS = 64
MAX_NAME = 200
# The state each action leads to (``inject`` and ``speed`` keep the state), and the states it is allowed in.
_ALLOWED: dict[str, tuple[State, ...]] = {
    "start": ("ready",),
    "pause": ("running",),
    "resume": ("paused",),
    "stop": ("ready", "running", "paused"),
    "inject": ("ready", "running", "paused"),
    "speed": ("ready", "running", "paused"),
}
_NEXT: dict[str, State] = {"start": "running", "pause": "paused", "resume": "running", "stop": "stopped"}


class BadExerciseRequest(ValueError):
    """A registration, control action or progress report that breaks the rules (message says which)."""


class Exercise(msgspec.Struct, frozen=True, kw_only=True):
    """A registered exercise as the server keeps it; ``version`` counts writes (compare-and-set)."""

    id: str
    name: str
    scenario_sha256: str
    units: int
    injects: list[str]
    speed: float
    missions: list[str] = []
    state: State = "ready"
    clock_s: float = 0.0
    injects_done: int = 0
    sent: int = 0
    started_at: int | None = None
    created_at: int
    updated_at: int
    controller: str
    groups: list[str] = []
    last_seq: int = 0
    version: int = 1


class Command(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One control action for the runner, numbered per exercise from 1."""

    seq: int
    action: Action
    inject: str | None = None
    speed: float | None = None
    by: str = ""
    at: int = 0


def check_registration(exercise_id: str, name: str, sha256: str, units: int, injects: list[str], speed: float,
                       missions: list[str]) -> None:
    """Refuse what a runner may not register (:class:`BadExerciseRequest` with the reason)."""
    if not valid_exercise_id(exercise_id) or exercise_id in RESERVED_IDS:
        raise BadExerciseRequest("id: 1-64 letters, digits, '-' or '_', and not 'any' or 'none'")
    if not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        raise BadExerciseRequest(f"name: 1-{MAX_NAME} printable characters")
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise BadExerciseRequest("scenario_sha256: 64 lowercase hexadecimal digits")
    if not 0 <= units <= MAX_UNITS:
        raise BadExerciseRequest(f"units: 0 to {MAX_UNITS}")
    if len(injects) > MAX_INJECTS or len(set(injects)) != len(injects):
        raise BadExerciseRequest(f"injects: at most {MAX_INJECTS} distinct inject ids")
    for inject in injects:
        if not valid_exercise_id(inject):
            raise BadExerciseRequest("injects: each id 1-64 letters, digits, '-' or '_'")
    check_speed(speed)
    if len(missions) > MAX_MISSIONS or any(not m or len(m) > 256 or not m.isprintable() for m in missions):
        raise BadExerciseRequest(f"missions: at most {MAX_MISSIONS} mission names of 1-256 printable characters")


def check_speed(speed: float) -> float:
    """An exercise clock speed, 1x to 10x."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise BadExerciseRequest(f"speed: {MIN_SPEED:g} to {MAX_SPEED:g}")
    return speed


def apply_action(exercise: Exercise, action: str, *, inject: str | None, speed: float | None) -> Exercise:
    """The exercise as the action leaves it (state, speed); :class:`BadExerciseRequest` when not allowed now.

    The state changes at once (what the controller asked for); the runner's progress reports then
    say what it actually did.
    """
    allowed = _ALLOWED.get(action)
    if allowed is None:
        raise BadExerciseRequest("action: one of " + ", ".join(ACTIONS))
    if exercise.state not in allowed:
        raise BadExerciseRequest(f"cannot {action} an exercise that is {exercise.state}")
    if action == "inject":
        if inject is None or inject not in exercise.injects:
            raise BadExerciseRequest("inject: the id of one of the exercise's injects")
    elif inject is not None:
        raise BadExerciseRequest("inject: only with action inject")
    if action == "speed":
        if speed is None:
            raise BadExerciseRequest("speed: a number from 1 to 10 with action speed")
        return msgspec.structs.replace(exercise, speed=check_speed(speed))
    if speed is not None:
        raise BadExerciseRequest("speed: only with action speed")
    next_state = _NEXT.get(action)
    return exercise if next_state is None else msgspec.structs.replace(exercise, state=next_state)


def check_progress(state: str, clock_s: float, speed: float, sent: int, injects_done: int) -> State:
    """A runner's progress report within bounds; returns its state."""
    if state not in ("ready", "running", "paused", "stopped"):
        raise BadExerciseRequest("state: ready, running, paused or stopped")
    if not 0 <= clock_s <= 10 * 365 * 86400:
        raise BadExerciseRequest("clock_s: 0 or more seconds (at most ten years)")
    check_speed(speed)
    if sent < 0 or injects_done < 0:
        raise BadExerciseRequest("sent and injects_done: 0 or more")
    return cast(State, state)
