"""Exercise calls of the REST clients (``/api/exercises``; see ``docs/exercises.md``). Exercises travel as dicts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rallypoint.client.calls import Call, params, segment


class ExerciseCalls:
    """Exercise operations; ``_call`` sends a :class:`Call` (and is awaitable in the async client)."""

    def _call(self, call: Call) -> Any:
        raise NotImplementedError

    def register_exercise(
        self, exercise_id: str, *, name: str, scenario_sha256: str, units: int, injects: Iterable[str] = (),
        speed: float = 1.0, missions: Iterable[str] = (),
    ) -> Any:
        """Register an exercise; you become its controller (the same registration again returns it)."""
        body = {"id": exercise_id, "name": name, "scenario_sha256": scenario_sha256, "units": units,
                "injects": list(injects), "speed": speed, "missions": list(missions)}
        return self._call(Call("POST", "/api/exercises", json=body))

    def exercises(self) -> Any:
        """Exercises you may see, newest first."""
        return self._call(Call("GET", "/api/exercises"))

    def exercise(self, exercise_id: str) -> Any:
        """One exercise's state and progress."""
        return self._call(Call("GET", f"/api/exercises/{segment(exercise_id)}"))

    def exercise_progress(self, exercise_id: str, *, state: str, clock_s: float, speed: float, sent: int,
                          injects_done: int) -> Any:
        """Report the runner's progress (controller only)."""
        body = {"state": state, "clock_s": clock_s, "speed": speed, "sent": sent, "injects_done": injects_done}
        return self._call(Call("POST", f"/api/exercises/{segment(exercise_id)}/progress", json=body))

    def control_exercise(self, exercise_id: str, action: str, *, inject: str | None = None,
                         speed: float | None = None) -> Any:
        """start, pause, resume, stop, inject (``inject``) or speed (``speed``): ``{"seq": n}``."""
        body: dict[str, Any] = {"action": action}
        if inject is not None:
            body["inject"] = inject
        if speed is not None:
            body["speed"] = speed
        return self._call(Call("POST", f"/api/exercises/{segment(exercise_id)}/control", json=body))

    def exercise_commands(self, exercise_id: str, *, after: int = 0, wait: int = 0) -> Any:
        """Commands after ``after``, waiting up to ``wait`` seconds (at most 25) when there is none yet."""
        return self._call(Call("GET", f"/api/exercises/{segment(exercise_id)}/commands",
                               params(after=after, wait=wait)))
