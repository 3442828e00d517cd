"""``/api/tasks``: create tasks, list and read them, move them through their lifecycle, cancel them.

The rules (who may see and move what) are ``services.tasks_rules``; this module turns callers into
actors and the service's refusals into answers (400 invalid, 403 not allowed, 404 unknown or not
visible, 409 no such move from the current state).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.model.task import StatusChange, Task, TaskRequest, TaskState
from rallypoint.services.missions_access import Caller, MissionError
from rallypoint.services.tasks import TaskService
from rallypoint.services.tasks_rules import Actor, TaskError
from rallypoint.storage.base.tasks import MAX_LIMIT, TaskQuery
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Param, json_response, parse_int, parse_text, read_body
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.context import RequestIdentity, WebContext

MAX_BODY_BYTES = 16 * 1024
S = TypeVar("S")
_ID = Param("id", "path", {"type": "string", "maxLength": 64}, "task id", required=True)
_FILTERS = (
    Param("state", "query", {"type": "string", "enum": [s.value for s in TaskState]}, "only tasks in this state"),
    Param("assignee", "query", {"type": "string", "maxLength": 128}, "only tasks of this uid, callsign or group"),
    Param("mission", "query", {"type": "string", "maxLength": 128}, "only tasks of this mission"),
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 1000},
          "at most this many, newest first"),
)
_ERRORS = {401: ("Not logged in", ErrorBody), 403: ("Not allowed", ErrorBody)}


async def read_task_body(request: Request, struct: type[S]) -> S:
    """The JSON body; any value out of bounds (or NaN, or a field unknown) answers 400 with the reason."""
    try:
        return await read_body(request, struct, MAX_BODY_BYTES)
    except ApiError as exc:
        if exc.status == 422:
            raise ApiError(400, "invalid_task", exc.detail) from exc
        raise


def actor_of(identity: RequestIdentity) -> Actor:
    """The task actor of an authenticated API caller."""
    principal = identity.principal or "anonymous"
    return Actor(label=principal, principal=identity.principal, read_groups=identity.read_groups,
                 write_groups=identity.write_groups, admin=identity.role == "admin")


class TasksApi:
    """The task endpoints over a :class:`TaskService` (503 without one)."""

    def __init__(self, ctx: WebContext, auth: ApiAuth, tasks: TaskService | None) -> None:
        self._ctx = ctx
        self._auth = auth
        self._tasks = tasks

    def _service(self) -> TaskService:
        if self._tasks is None:
            raise ApiError(503, "unavailable", "tasks are not enabled on this server")
        return self._tasks

    async def _check_mission(self, identity: RequestIdentity, name: str) -> None:
        missions = self._ctx.missions
        if missions is None:
            raise ApiError(400, "invalid_task", "missions are not enabled on this server")
        caller = Caller(principal=identity.principal, write_groups=identity.write_groups,
                        read_groups=identity.read_groups, admin=identity.role == "admin")
        try:
            await missions.find(caller, name)
        except MissionError as exc:
            raise ApiError(400, "invalid_task", f"mission {name!r} not found") from exc

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""

        async def run(work: Awaitable[Task]) -> Task:
            try:
                return await work
            except TaskError as exc:
                raise ApiError(exc.status, exc.error, str(exc)) from exc

        async def create(request: Request) -> Response:
            service = self._service()
            identity = await self._auth.principal(request)
            body = await read_task_body(request, TaskRequest)
            if body.mission is not None:
                await self._check_mission(identity, body.mission)
            return json_response(await run(service.create(actor_of(identity), body)), status=201)

        async def listing(request: Request) -> Response:
            service = self._service()
            identity = await self._auth.principal(request)
            state = parse_text(request, "state", max_length=32)
            if state is not None and state not in {s.value for s in TaskState}:
                raise ApiError(400, "bad_parameter", f"state must be one of {', '.join(s.value for s in TaskState)}")
            query = TaskQuery(
                state=TaskState(state) if state is not None else None,
                assignee=parse_text(request, "assignee", max_length=128),
                mission=parse_text(request, "mission", max_length=128),
                limit=parse_int(request, "limit", default=1000, low=1, high=MAX_LIMIT),
            )
            return json_response(await service.find(actor_of(identity), query))

        async def show(request: Request) -> Response:
            service = self._service()
            identity = await self._auth.principal(request)
            return json_response(await run(service.get(actor_of(identity), request.path_params["id"])))

        async def status(request: Request) -> Response:
            service = self._service()
            identity = await self._auth.principal(request)
            body = await read_task_body(request, StatusChange)
            return json_response(await run(
                service.change(actor_of(identity), request.path_params["id"], body.state, note=body.note)
            ))

        async def cancel(request: Request) -> Response:
            service = self._service()
            identity = await self._auth.principal(request)
            note = parse_text(request, "note", max_length=500) or ""
            return json_response(await run(
                service.change(actor_of(identity), request.path_params["id"], TaskState.CANCELLED, note=note)
            ))

        moves = {409: ("No such move from the task's state", ErrorBody), 404: ("Unknown task", ErrorBody),
                 400: ("Invalid body, note or id", ErrorBody)}
        bodies = {413: ("Body too large", ErrorBody), 415: ("Not JSON", ErrorBody)}
        return [
            Endpoint("POST", "/api/tasks", create, "Assign a task to a unit (uid or callsign) or a team (group)",
                     "tasks", {201: ("Created and sent", Task), 400: ("Invalid task", ErrorBody),
                               **bodies, **_ERRORS},
                     body=TaskRequest, operation_id="createTask"),
            Endpoint("GET", "/api/tasks", listing, "Tasks you may see, newest first", "tasks",
                     {200: ("Tasks", list[Task]), 400: ("Bad filter", ErrorBody), **_ERRORS},
                     params=_FILTERS, operation_id="listTasks"),
            Endpoint("GET", "/api/tasks/{id}", show, "One task with its history", "tasks",
                     {200: ("The task", Task), 404: ("Unknown task", ErrorBody), **_ERRORS},
                     params=(_ID,), operation_id="getTask"),
            Endpoint("POST", "/api/tasks/{id}/status", status, "Move a task to another state", "tasks",
                     {200: ("The task after the move", Task), **moves,
                      **bodies, **_ERRORS}, body=StatusChange, params=(_ID,), operation_id="setTaskStatus"),
            Endpoint("DELETE", "/api/tasks/{id}", cancel, "Cancel a task (creator or admin)", "tasks",
                     {200: ("The cancelled task", Task), **moves, **_ERRORS},
                     params=(_ID, Param("note", "query", {"type": "string", "maxLength": 500}, "why")),
                     operation_id="cancelTask"),
        ]
