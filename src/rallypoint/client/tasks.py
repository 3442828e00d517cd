"""Task calls of the REST clients (``/api/tasks``; see ``docs/tasks.md``). Tasks travel as JSON dicts."""

from __future__ import annotations

from typing import Any

from rallypoint.client.calls import Call, params, segment


class TaskCalls:
    """Task operations; ``_call`` sends a :class:`Call` (and is awaitable in the async client)."""

    def _call(self, call: Call) -> Any:
        raise NotImplementedError

    def create_task(
        self, what: str, *, uid: str | None = None, callsign: str | None = None, group: str | None = None,
        point: tuple[float, float] | None = None, hae: float | None = None, due_ms: int | None = None,
        mission: str | None = None, notify_uid: str | None = None, details: str | None = None,
        priority: int | None = None,
    ) -> Any:
        """Assign a task to one of ``uid``, ``callsign`` or ``group``; ``point`` is (lat, lon); priority 1 (most
        urgent) to 5."""
        assignee = {k: v for k, v in (("uid", uid), ("callsign", callsign), ("group", group)) if v is not None}
        body: dict[str, Any] = {"what": what, "assignee": assignee}
        if point is not None:
            body["where"] = {"lat": point[0], "lon": point[1], **({"hae": hae} if hae is not None else {})}
        for key, value in (("due_ms", due_ms), ("mission", mission), ("notify_uid", notify_uid),
                           ("details", details), ("priority", priority)):
            if value is not None:
                body[key] = value
        return self._call(Call("POST", "/api/tasks", json=body))

    def tasks(self, *, state: str | None = None, assignee: str | None = None, mission: str | None = None,
              limit: int | None = None) -> Any:
        """Tasks you may see, newest first, filtered by state, assignee (uid, callsign or group) and mission."""
        return self._call(Call("GET", "/api/tasks", params(state=state, assignee=assignee, mission=mission,
                                                           limit=limit)))

    def task(self, task_id: str) -> Any:
        """One task with its history."""
        return self._call(Call("GET", f"/api/tasks/{segment(task_id)}"))

    def set_task_status(self, task_id: str, state: str, note: str = "") -> Any:
        """Move a task: acknowledged, in_progress, done, failed or cancelled."""
        return self._call(Call("POST", f"/api/tasks/{segment(task_id)}/status", json={"state": state, "note": note}))

    def cancel_task(self, task_id: str, note: str | None = None) -> Any:
        """Cancel a task (its creator or an admin)."""
        return self._call(Call("DELETE", f"/api/tasks/{segment(task_id)}", params(note=note)))
