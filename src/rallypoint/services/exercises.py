"""Registered exercises, their live control and the isolation of their traffic (docs/exercises.md).

A runner registers its exercise (``POST /api/exercises``) and becomes its controller; the
controller (or an admin) sends control actions, each numbered and kept in the store, and the runner
long-polls for them. Anyone reading one of the controller's groups may see the exercise.

Isolation: exercise traffic joins a live mission only if the exercise registered that mission
(``missions``). :meth:`ExerciseService.may_join` answers from an in-memory mirror, because it runs
on the bus path: the mirror is loaded at start and updated whenever this node registers or reads
an exercise, so another node learns a new exercise's missions the first time it serves that
exercise (its runner's progress or commands) or at its next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

import msgspec
from starlette.routing import BaseRoute

from rallypoint.clock import Clock
from rallypoint.model.exercise_control import (
    BadExerciseRequest,
    Command,
    Exercise,
    apply_action,
    check_progress,
    check_registration,
)
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.storage.base.exercises import ExerciseRecords

log = logging.getLogger(__name__)

MAX_WAIT_S = 25.0
# While a runner waits for commands, the store is read again this often: another node may have
# added one (a command added on this node wakes the waiter at once).
RECHECK_S = 1.0
_CAS_ATTEMPTS = 5
# A change to an exercise: (stored exercise, now in ms) -> changed exercise.
_Change = Callable[[Exercise, int], Exercise]


class Caller(msgspec.Struct, frozen=True):
    """Who asks: principal, whether an admin, the groups they read (visibility)."""

    principal: str
    admin: bool
    read_groups: frozenset[str]
    write_groups: frozenset[str] = frozenset()


class ExerciseNotFound(LookupError):
    """No exercise of that id that the caller may see."""


class ExerciseDenied(PermissionError):
    """The caller may see the exercise but is not its controller (nor an admin)."""


class ExerciseExists(ValueError):
    """An exercise of that id exists and was registered by someone else or from another scenario."""


class Registration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/exercises``."""

    id: str
    name: str
    scenario_sha256: str
    units: int
    injects: list[str] = []
    speed: float = 1.0
    missions: list[str] = []


class ExerciseService:
    """The control API's rules over an :class:`ExerciseRecords` store; a node feature (closes the store)."""

    def __init__(self, store: ExerciseRecords, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._missions: dict[str, frozenset[str]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self.registered = 0
        self.commands_added = 0
        self.refused_traffic = 0

    # -- node feature ----------------------------------------------------------------------------
    @property
    def routes(self) -> Sequence[BaseRoute]:
        return ()

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        return None

    async def run(self) -> None:
        """Load which missions each exercise may join."""
        for exercise in await self._store.all():
            self._remember(exercise)

    async def close(self) -> None:
        await self._store.close()

    def counters(self) -> Iterable[tuple[str, str, float]]:
        """Metrics: exercises registered, control commands added, exercise CoT kept out of missions."""
        return [
            ("rallypoint_exercises_registered", "Exercises registered on this node", float(self.registered)),
            ("rallypoint_exercise_commands", "Exercise control commands added on this node",
             float(self.commands_added)),
            ("rallypoint_exercise_mission_refusals",
             "Exercise CoT addressed to a live mission the exercise did not register", float(self.refused_traffic)),
        ]

    # -- isolation ---------------------------------------------------------------------------------
    def may_join(self, exercise_id: str, mission: str) -> bool:
        """Whether traffic of ``exercise_id`` may join mission ``mission`` (the exercise registered it)."""
        allowed = mission in self._missions.get(exercise_id, frozenset())
        if not allowed:
            self.refused_traffic += 1
        return allowed

    def _remember(self, exercise: Exercise) -> None:
        self._missions[exercise.id] = frozenset(exercise.missions)

    # -- the API -----------------------------------------------------------------------------------
    async def register(self, caller: Caller, body: Registration) -> tuple[Exercise, bool]:
        """Register ``body`` with the caller as controller; (exercise, created).

        Registering the same id again from the same scenario by the same controller returns the
        stored exercise (a runner that restarts); anything else with that id is :class:`ExerciseExists`.
        """
        check_registration(body.id, body.name, body.scenario_sha256, body.units, body.injects, body.speed,
                           body.missions)
        now = self._clock.now_ms()
        exercise = Exercise(
            id=body.id, name=body.name, scenario_sha256=body.scenario_sha256, units=body.units,
            injects=list(body.injects), speed=body.speed, missions=sorted(set(body.missions)), created_at=now,
            updated_at=now, controller=caller.principal, groups=sorted(caller.write_groups or caller.read_groups),
        )
        if await self._store.insert(exercise):
            self.registered += 1
            self._remember(exercise)
            return exercise, True
        existing = await self._store.get(body.id)
        if (existing is None or existing.controller != caller.principal
                or existing.scenario_sha256 != body.scenario_sha256):
            raise ExerciseExists(f"an exercise {body.id!r} is already registered; choose another --exercise-id")
        self._remember(existing)
        return existing, False

    async def visible(self, caller: Caller) -> list[Exercise]:
        """Exercises the caller may see, newest first."""
        return [e for e in await self._store.all() if _sees(caller, e)]

    async def get(self, caller: Caller, exercise_id: str) -> Exercise:
        """One exercise the caller may see (:class:`ExerciseNotFound` otherwise)."""
        exercise = await self._store.get(exercise_id)
        if exercise is None or not _sees(caller, exercise):
            raise ExerciseNotFound(exercise_id)
        self._remember(exercise)
        return exercise

    async def progress(self, caller: Caller, exercise_id: str, *, state: str, clock_s: float, speed: float,
                       sent: int, injects_done: int) -> Exercise:
        """The runner's report of where it is; controller (or admin) only."""
        checked = check_progress(state, clock_s, speed, sent, injects_done)

        def change(e: Exercise, now: int) -> Exercise:
            started = e.started_at if e.started_at is not None or checked != "running" else now
            return msgspec.structs.replace(e, state=checked, clock_s=clock_s, speed=speed, sent=sent,
                                           injects_done=injects_done, started_at=started)

        return await self._update(caller, exercise_id, change)

    async def control(self, caller: Caller, exercise_id: str, action: str, *, inject: str | None = None,
                      speed: float | None = None) -> tuple[Exercise, int]:
        """Apply ``action`` (controller or admin) and queue it for the runner; (exercise, command seq)."""

        def change(e: Exercise, now: int) -> Exercise:
            return apply_action(e, action, inject=inject, speed=speed)

        exercise = await self._update(caller, exercise_id, change)
        command = Command(seq=0, action=action, inject=inject, speed=speed,  # type: ignore[arg-type]
                          by=caller.principal, at=self._clock.now_ms())
        seq = await self._store.add_command(exercise_id, command)
        if seq is None:
            raise ExerciseNotFound(exercise_id)
        self.commands_added += 1
        self._wakeup(exercise_id).set()
        return exercise, seq

    async def commands(self, caller: Caller, exercise_id: str, *, after: int, wait_s: float) -> list[Command]:
        """Commands after ``after``; waits up to ``wait_s`` (at most 25 s) for one when there is none yet."""
        exercise = await self.get(caller, exercise_id)
        _check_controller(caller, exercise)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(wait_s, 0.0), MAX_WAIT_S)
        while True:
            wakeup = self._wakeup(exercise_id)
            wakeup.clear()
            found = await self._store.commands(exercise_id, after=after)
            left = deadline - loop.time()
            if found or left <= 0:
                return found
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=min(left, RECHECK_S))
            except TimeoutError:
                pass

    def _wakeup(self, exercise_id: str) -> asyncio.Event:
        event = self._wakeups.get(exercise_id)
        if event is None:
            event = self._wakeups[exercise_id] = asyncio.Event()
        return event

    async def _update(self, caller: Caller, exercise_id: str, change: _Change) -> Exercise:
        for _ in range(_CAS_ATTEMPTS):
            current = await self.get(caller, exercise_id)
            _check_controller(caller, current)
            now = self._clock.now_ms()
            changed = msgspec.structs.replace(change(current, now), updated_at=now, version=current.version + 1)
            if await self._store.replace(changed, expected_version=current.version):
                self._remember(changed)
                return changed
        raise BadExerciseRequest("the exercise changed too often at once; try again")


def _sees(caller: Caller, exercise: Exercise) -> bool:
    return caller.admin or exercise.controller == caller.principal or not caller.read_groups.isdisjoint(exercise.groups)


def _check_controller(caller: Caller, exercise: Exercise) -> None:
    if not caller.admin and exercise.controller != caller.principal:
        raise ExerciseDenied(f"only the exercise's controller ({exercise.controller}) or an admin may do this")
