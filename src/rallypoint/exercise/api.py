"""The runner's side of the native API: the exercise control calls and the injects done through the API.

:class:`ExerciseApi` adds the control routes (``/api/exercises``: register, progress, command feed;
docs/exercises.md, "Control and marking") to the project's async client. :func:`perform_api_inject`
carries out a task, designation or feed inject as the runner's account and says what happened.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx

from rallypoint.client.calls import Call, params, segment
from rallypoint.client.http import ApiError, AsyncRallypointClient
from rallypoint.exercise.events import unit_uid
from rallypoint.exercise.model import Inject, InjectKind, Scenario

# The longest the command feed is asked to wait (the server caps it at 25 s).
COMMAND_WAIT_S = 20
# Task states meaning "acknowledged or further along" (docs/tasks.md).
ACKNOWLEDGED = frozenset({"acknowledged", "in_progress", "done"})


@dataclass(frozen=True, slots=True)
class Command:
    """One control action from the command feed."""

    seq: int
    action: str
    inject: str | None = None
    speed: float | None = None


@dataclass(frozen=True, slots=True)
class ApiOutcome:
    """What an API inject did: ``ok``, a short ``note`` and the server's id of what it made."""

    ok: bool
    note: str
    made_id: str | None = None


class ExerciseApi(AsyncRallypointClient):
    """The async client plus the exercise control routes."""

    async def register_run(self, scenario: Scenario, sha256: str, speed: float) -> bool:
        """Register the exercise (the caller becomes its controller); False when the server has no such API."""
        body = {"id": scenario.id, "name": scenario.name, "scenario_sha256": sha256, "units": len(scenario.units),
                "injects": [i.id for i in scenario.injects], "speed": speed, "missions": list(scenario.missions)}
        try:
            await self._call(Call("POST", "/api/exercises", json=body))
        except ApiError as exc:
            if exc.status in (404, 405, 503):
                return False
            raise
        return True

    async def report_progress(self, exercise_id: str, *, state: str, clock_s: float, speed: float, sent: int,
                       injects_done: int) -> None:
        """Report where the runner is."""
        body = {"state": state, "clock_s": round(clock_s, 3), "speed": speed, "sent": sent,
                "injects_done": injects_done}
        await self._call(Call("POST", f"/api/exercises/{segment(exercise_id)}/progress", json=body))

    async def command_feed(self, exercise_id: str, after: int, wait_s: int = COMMAND_WAIT_S) -> list[Command]:
        """Commands after ``after``, waiting up to ``wait_s`` for one."""
        found: Any = await self._call(Call("GET", f"/api/exercises/{segment(exercise_id)}/commands",
                                           params(after=after, wait=wait_s)))
        return [Command(int(c["seq"]), str(c["action"]), c.get("inject"),
                        float(c["speed"]) if c.get("speed") is not None else None) for c in found or []]

    async def task_state(self, task_id: str) -> str:
        """The state of one task."""
        task: Any = await self.task(task_id)
        return str(task.get("state", ""))


def scenario_digest(data: bytes) -> str:
    """The scenario's SHA-256 (hex), registered so a restarted runner is known for the same scenario."""
    return hashlib.sha256(data).hexdigest()


async def perform_api_inject(api: ExerciseApi, scenario: Scenario, inject: Inject) -> ApiOutcome:
    """Carry out a task, designation or feed inject; refusals and network failures become the outcome."""
    try:
        return await _perform(api, scenario, inject)
    except ApiError as exc:
        return ApiOutcome(False, f"{exc.status} {exc.error}: {exc.detail}"[:300])
    except httpx.HTTPError as exc:
        return ApiOutcome(False, f"API unreachable: {exc}"[:300])


async def _perform(api: ExerciseApi, scenario: Scenario, inject: Inject) -> ApiOutcome:
    point = (inject.position.lat, inject.position.lon) if inject.position is not None else None
    if inject.kind is InjectKind.TASK:
        who = dict(inject.assignee)
        if "unit" in who:
            who = {"uid": unit_uid(scenario.id, who.pop("unit"))}
        task: Any = await api.create_task(inject.text, uid=who.get("uid"), callsign=who.get("callsign"),
                                          group=who.get("group"), point=point)
        task_id = str(task.get("id", ""))
        return ApiOutcome(True, f"task {task_id} assigned", task_id)
    if inject.kind is InjectKind.DESIGNATION:
        assert point is not None
        made: Any = await api.propose_designation(inject.title, inject.category, point=point, notes=inject.text)
        made_id = str(made.get("id", ""))
        return ApiOutcome(True, f"designation {made_id} proposed", made_id)
    if inject.kind is InjectKind.FEED_START:
        await api.add_feed(inject.url, name=inject.feed, exercise=scenario.id)
        return ApiOutcome(True, f"feed {inject.feed} started")
    if inject.kind is InjectKind.FEED_STOP:
        await api.remove_feed(inject.feed)
        return ApiOutcome(True, f"feed {inject.feed} stopped")
    raise ValueError(f"{inject.kind.value} is not an API inject")
