"""``/api/exercises``: register an exercise, follow it, control it live, and the runner's command feed.

The rules are ``services.exercises``; this module maps them onto HTTP (docs/exercises.md, "Control
and marking", and docs/api.md). Every control action and registration is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rallypoint.model.exercise_control import BadExerciseRequest, Command, Exercise, State
from rallypoint.services.exercises import (
    MAX_WAIT_S,
    Caller,
    ExerciseDenied,
    ExerciseExists,
    ExerciseNotFound,
    ExerciseService,
    Registration,
)
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Param, check_only, json_response, parse_int, read_body
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.context import RequestIdentity, WebContext

log = logging.getLogger(__name__)

_ID = Param("id", "path", {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"}, "exercise id", required=True)
_ERRORS = {400: ("Bad query parameter or malformed body", ErrorBody), 401: ("Not authenticated", ErrorBody),
           503: ("No exercise registry on this node", ErrorBody)}
_ONE = {404: ("No such exercise the caller may see", ErrorBody), **_ERRORS}
_CONTROLLER = {403: ("Not the exercise's controller nor an admin", ErrorBody), **_ONE}
_MAX_AFTER = 2**53


class ExerciseView(msgspec.Struct, frozen=True):
    """An exercise as the API shows it (times in epoch milliseconds)."""

    id: str
    name: str
    state: State
    clock_s: float
    speed: float
    units: int
    injects: list[str]
    injects_done: int
    sent: int
    started_at: int | None
    updated_at: int
    controller: str
    scenario_sha256: str
    missions: list[str]


class Progress(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/exercises/{id}/progress``: where the runner is."""

    state: str
    clock_s: float
    speed: float
    sent: int
    injects_done: int


class Control(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/exercises/{id}/control``: start, pause, resume, stop, inject (``inject``), speed (``speed``)."""

    action: str
    inject: str | None = None
    speed: float | None = None


class Queued(msgspec.Struct, frozen=True):
    """The sequence number the runner will see the command under."""

    seq: int


def view(e: Exercise) -> ExerciseView:
    """The API shape of an exercise."""
    return ExerciseView(id=e.id, name=e.name, state=e.state, clock_s=e.clock_s, speed=e.speed, units=e.units,
                        injects=e.injects, injects_done=e.injects_done, sent=e.sent, started_at=e.started_at,
                        updated_at=e.updated_at, controller=e.controller, scenario_sha256=e.scenario_sha256,
                        missions=e.missions)


def caller_of(identity: RequestIdentity) -> Caller:
    """The service's view of an authenticated caller."""
    assert identity.principal is not None
    return Caller(principal=identity.principal, admin=identity.role == "admin", read_groups=identity.read_groups,
                  write_groups=identity.write_groups)


class ExercisesApi:
    """The exercise endpoints over the context's exercise service (503 when the node has none)."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    def _service(self) -> ExerciseService:
        if self._ctx.exercises is None:
            raise ApiError(503, "unavailable", "this node keeps no exercise registry")
        return self._ctx.exercises

    async def _caller(self, request: Request, allowed: frozenset[str] = frozenset()) -> Caller:
        check_only(request, allowed)
        return caller_of(await self._auth.principal(request))

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        limit = self._ctx.settings.max_http_body_bytes
        audit = self._ctx.auditor.record

        async def register(request: Request) -> Response:
            caller = await self._caller(request)
            body = await read_body(request, Registration, limit)
            try:
                exercise, created = await self._service().register(caller, body)
            except BadExerciseRequest as exc:
                self._ctx.metrics.rejected.labels("exercise_bad_request", "http").inc()
                raise ApiError(422, "invalid", str(exc)) from None
            except ExerciseExists as exc:
                raise ApiError(409, "exists", str(exc)) from None
            if created:
                audit(caller.principal, "exercise.register", exercise.id,
                      {"name": exercise.name, "scenario_sha256": exercise.scenario_sha256,
                       "missions": ",".join(exercise.missions)})
            return json_response(view(exercise), status=201 if created else 200)

        async def list_exercises(request: Request) -> Response:
            caller = await self._caller(request)
            return json_response([view(e) for e in await self._service().visible(caller)])

        async def one(request: Request) -> Response:
            caller = await self._caller(request)
            with _answers():
                return json_response(view(await self._service().get(caller, request.path_params["id"])))

        async def progress(request: Request) -> Response:
            caller = await self._caller(request)
            body = await read_body(request, Progress, limit)
            with _answers():
                exercise = await self._service().progress(
                    caller, request.path_params["id"], state=body.state, clock_s=body.clock_s, speed=body.speed,
                    sent=body.sent, injects_done=body.injects_done,
                )
            return json_response(view(exercise))

        async def control(request: Request) -> Response:
            caller = await self._caller(request)
            body = await read_body(request, Control, limit)
            exercise_id = request.path_params["id"]
            with _answers():
                _, seq = await self._service().control(caller, exercise_id, body.action, inject=body.inject,
                                                       speed=body.speed)
            detail = {"seq": str(seq)}
            if body.inject is not None:
                detail["inject"] = body.inject
            if body.speed is not None:
                detail["speed"] = f"{body.speed:g}"
            audit(caller.principal, f"exercise.{body.action}", exercise_id, detail)
            return json_response(Queued(seq=seq))

        async def commands(request: Request) -> Response:
            caller = await self._caller(request, frozenset({"after", "wait"}))
            after = parse_int(request, "after", default=0, low=0, high=_MAX_AFTER)
            wait = parse_int(request, "wait", default=0, low=0, high=int(MAX_WAIT_S))
            with _answers():
                found = await self._service().commands(caller, request.path_params["id"], after=after, wait_s=wait)
            return json_response(found)

        return [
            Endpoint("POST", "/api/exercises", register, "Register an exercise; the caller becomes its controller",
                     "exercises",
                     {201: ("Registered", ExerciseView), 200: ("Already registered by the caller from this scenario",
                                                               ExerciseView),
                      409: ("The id is taken", ErrorBody), 422: ("Not a valid registration", ErrorBody), **_ERRORS},
                     body=Registration, operation_id="registerExercise"),
            Endpoint("GET", "/api/exercises", list_exercises, "Exercises the caller may see, newest first",
                     "exercises", {200: ("Exercises", list[ExerciseView]), **_ERRORS}, operation_id="listExercises"),
            Endpoint("GET", "/api/exercises/{id}", one, "One exercise's state and progress", "exercises",
                     {200: ("The exercise", ExerciseView), **_ONE}, params=(_ID,), operation_id="getExercise"),
            Endpoint("POST", "/api/exercises/{id}/progress", progress, "The runner reports where it is", "exercises",
                     {200: ("The exercise", ExerciseView), 422: ("Out of bounds", ErrorBody), **_CONTROLLER},
                     body=Progress, params=(_ID,), operation_id="exerciseProgress"),
            Endpoint("POST", "/api/exercises/{id}/control", control,
                     "Start, pause, resume, stop, inject now or change speed (audited exercise.<action>)", "exercises",
                     {200: ("Queued for the runner", Queued),
                      422: ("Not allowed in this state, unknown inject, bad speed", ErrorBody), **_CONTROLLER},
                     body=Control, params=(_ID,), operation_id="controlExercise"),
            Endpoint("GET", "/api/exercises/{id}/commands", commands,
                     "The runner's command feed: commands after a sequence number, waiting up to 25 s for one",
                     "exercises", {200: ("Commands in order", list[Command]), **_CONTROLLER},
                     params=(_ID,
                             Param("after", "query", {"type": "integer", "minimum": 0, "maximum": _MAX_AFTER},
                                   "last seq seen (default 0)"),
                             Param("wait", "query", {"type": "integer", "minimum": 0, "maximum": int(MAX_WAIT_S)},
                                   "seconds to wait for a command when there is none yet (default 0)")),
                     operation_id="exerciseCommands"),
        ]


@contextmanager
def _answers() -> Iterator[None]:
    """Maps the service's refusals onto API errors (404, 403, 422)."""
    try:
        yield
    except ExerciseNotFound:
        raise ApiError(404, "not_found", "no such exercise") from None
    except ExerciseDenied as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    except BadExerciseRequest as exc:
        raise ApiError(422, "invalid", str(exc)) from None
