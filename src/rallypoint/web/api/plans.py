"""``/api/missions/{name}/plan``: a mission's operation plan, its versions, diffs, revert, export and import.

Every call goes through :class:`PlanService` (the mission's rules: reading needs a mission the
caller can see, changing needs write access in it). A refused plan answers 400 with what to fix;
a change based on a version that is no longer the newest answers 409. The caller acts from its API
sender uid (``rallypoint-api-<name>``), as for the other mission endpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rallypoint.errors import LimitExceeded
from rallypoint.model.plan import Plan, PlanDiff, PlanPatch, PlanVersion, VersionInfo
from rallypoint.services.datapackages import sanitize_filename
from rallypoint.services.missions_access import Caller, MissionError
from rallypoint.services.plans import PlanService, uid_prefix
from rallypoint.services.plans_geojson import MEDIA_TYPE as GEOJSON
from rallypoint.services.plans_geojson import from_geojson, to_geojson
from rallypoint.services.plans_kml import MEDIA_TYPE as KML
from rallypoint.services.plans_kml import from_kml, to_kml
from rallypoint.services.plans_package import from_package, to_package
from rallypoint.services.plans_validate import PlanInvalid
from rallypoint.validation_errors import InvalidJson, decode_json
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import (
    BINARY,
    ApiError,
    Endpoint,
    Media,
    Param,
    check_only,
    json_response,
    parse_int,
)
from rallypoint.web.api.messaging import sender_uid
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.enrollment_auth import read_limited_body

T = TypeVar("T")
# A plan of 2,000-waypoint routes is larger than ordinary API bodies; 100,000 waypoints still fit,
# so that such a plan is refused for what it is (400, too many waypoints), not for its size.
MAX_PLAN_BODY_BYTES = 8 * 1024 * 1024
# Paths whose bodies may be that large (the HTTP body guard's per-pattern limits).
PLAN_BODY_LIMITS = ((r"/api/missions/[^/]+/plan(/import)?", MAX_PLAN_BODY_BYTES),)
MAX_VERSION = 2**31 - 1
FORMATS = ("datapackage", "kml", "geojson")
_NAME = Param("name", "path", {"type": "string"}, "mission name (case-sensitive)", required=True)
_ERRORS = {400: ("Invalid: the detail says what to fix", ErrorBody), 401: ("Not authenticated", ErrorBody),
           403: ("Refused (role or groups)", ErrorBody),
           404: ("No such mission the caller can see, or no such version", ErrorBody),
           503: ("This server runs without plans", ErrorBody)}
_BODY_ERRORS = {413: ("Body too large", ErrorBody), 415: ("Wrong media type", ErrorBody)}
_CONFLICT = {409: ("The plan changed meanwhile (base_version is not the newest)", ErrorBody)}


VersionNumber = Annotated[int, msgspec.Meta(ge=0, le=MAX_VERSION)]


class PlanChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``PUT``: the whole new plan, why, and optionally the version it was based on."""

    reason: str
    plan: Plan
    base_version: VersionNumber | None = None


class PlanEdit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``PATCH``: items to add or replace (by id), ids to remove, why."""

    reason: str
    upsert: Plan = Plan()
    remove: tuple[str, ...] = ()
    base_version: VersionNumber | None = None


class PlanRevert(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST .../revert``: the version to restore (as a new version) and why."""

    version: VersionNumber
    reason: str


class PlanView(msgspec.Struct, frozen=True):
    """A plan version as the API answers it (version 0: no plan yet)."""

    mission: str
    version: int
    author: str
    time_ms: int
    reason: str
    plan: Plan
    reverted_from: int | None = None


class Published(msgspec.Struct, frozen=True):
    """How many CoT events went to the mission's subscribers; the data package added to the mission, if asked."""

    sent: int
    package: str | None = None


def view_of(mission: str, version: PlanVersion | None) -> PlanView:
    """The API view of a version (an empty version 0 when there is none)."""
    if version is None:
        return PlanView(mission=mission, version=0, author="", time_ms=0, reason="", plan=Plan())
    return PlanView(mission=mission, version=version.version, author=version.author, time_ms=version.time_ms,
                    reason=version.reason, plan=version.plan, reverted_from=version.reverted_from)


class PlansApi:
    """The plan endpoints; counts refused requests."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth
        self.refused = 0
        ctx.metrics.add_counters(self._counters)

    def _counters(self) -> Iterable[tuple[str, str, float]]:
        return [("rallypoint_plan_requests_refused", "Plan API requests refused as invalid", float(self.refused))]

    def _service(self) -> PlanService:
        if self._ctx.plans is None:
            raise ApiError(503, "unavailable", "plans are not enabled")
        return self._ctx.plans

    def caller(self, identity: RequestIdentity) -> Caller:
        """The mission service's view of the caller (acting from its API sender uid)."""
        return Caller(principal=identity.principal, write_groups=identity.write_groups,
                      read_groups=identity.read_groups, client_uid=sender_uid(identity.principal or "anonymous"),
                      admin=identity.role == "admin", uid_held=True)

    def _audit(self, identity: RequestIdentity, action: str, name: str, version: PlanVersion) -> None:
        """One audit entry per stored version (the hash-chained log beside the plan's own history)."""
        details = {"version": str(version.version), "reason": version.reason, "via": "api"}
        if version.reverted_from is not None:
            details["reverted_from"] = str(version.reverted_from)
        self._ctx.auditor.record(identity.principal or "-", action, name, details)

    async def _run(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except MissionError as exc:
            if exc.status == 400:
                self.refused += 1
            labels = {400: "invalid_plan", 403: "forbidden", 404: "not_found", 409: "conflict"}
            raise ApiError(exc.status, labels.get(exc.status, "refused"), str(exc)) from exc

    async def _body(self, request: Request, struct: type[T], *, json_only: bool = True) -> T:
        raw = await self._raw(request, json_only=json_only)
        try:
            return decode_json(raw, struct, subject="the body")
        except InvalidJson as exc:
            self.refused += 1
            raise ApiError(400, "invalid_plan", exc.detail) from exc
        except RecursionError as exc:
            # The decoder gives up on arrays nested thousands deep: malformed for us, never a 500.
            self.refused += 1
            raise ApiError(400, "invalid_plan", "the body is nested too deeply") from exc

    async def _raw(self, request: Request, *, json_only: bool) -> bytes:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if json_only and ctype not in ("application/json", ""):
            raise ApiError(415, "unsupported_media_type", "send application/json")
        try:
            raw = await read_limited_body(request, MAX_PLAN_BODY_BYTES)
        except LimitExceeded as exc:
            self.refused += 1
            raise ApiError(413, "body_too_large", f"at most {MAX_PLAN_BODY_BYTES} bytes") from exc
        if not raw.strip():
            raise ApiError(400, "invalid_plan", "a body is required")
        return raw

    def _version(self, request: Request, name: str, *, required: bool = False) -> int | None:
        if request.query_params.get(name) in (None, ""):
            if required:
                raise ApiError(400, "bad_parameter", f"{name} is required")
            return None
        return parse_int(request, name, default=0, low=0, high=MAX_VERSION)

    async def export(self, identity: RequestIdentity, name: str, fmt: str, number: int | None) -> Response:
        """The plan (newest, or version ``number``) in ``fmt``, as a download."""
        service = self._service()
        caller = self.caller(identity)
        mission, latest = await self._run(service.current(caller, name))
        if number is None or number == 0:
            version = latest if number is None else None  # version 0: the empty plan before the first
        else:
            version = await self._run(service.version(caller, name, number))
        plan = version.plan if version is not None else Plan()
        n = version.version if version is not None else 0
        label = f"{mission.name} plan v{n}"
        stem = sanitize_filename(f"{mission.name}-plan-v{n}", "plan")
        match fmt:
            case "geojson":
                body, media, ext = msgspec.json.encode(to_geojson(plan, name=label)), GEOJSON, "geojson"
            case "kml":
                body, media, ext = to_kml(plan, name=label), KML, "kml"
            case _:
                body = await asyncio.to_thread(to_package, msgspec.json.encode(plan), plan,
                                               prefix=uid_prefix(mission), name=label,
                                               now_ms=self._ctx.clock.now_ms())
                media, ext = "application/zip", "zip"
        return Response(body, media_type=media,
                        headers={"content-disposition": f'attachment; filename="{stem}.{ext}"'})

    async def import_plan(self, identity: RequestIdentity, name: str, fmt: str, raw: bytes, reason: str,
                          replace: bool) -> PlanView:
        """Read a file in ``fmt`` and store it as a new version (merged into the plan, or replacing it)."""
        try:
            reader: Callable[[bytes], Plan]
            match fmt:
                case "geojson":
                    reader = from_geojson
                case "kml":
                    reader = from_kml
                case _:
                    reader = from_package
            # Parsing and checking a large file is CPU-bound: off the event loop.
            plan = await asyncio.to_thread(reader, raw)
        except PlanInvalid as exc:
            self.refused += 1
            raise ApiError(400, "invalid_plan", str(exc)) from exc
        service = self._service()
        caller = self.caller(identity)
        if replace:
            version = await self._run(service.replace(caller, name, plan, reason))
        else:
            version = await self._run(service.patch(caller, name, PlanPatch(upsert=plan), reason))
        self._audit(identity, "plan.import", name, version)
        return view_of(name, version)

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth
        prefix = "/api/missions/{name}/plan"

        def fmt_of(request: Request) -> str:
            fmt = request.query_params.get("format", "geojson")
            if fmt not in FORMATS:
                raise ApiError(400, "bad_parameter", "format must be one of: " + ", ".join(FORMATS))
            return fmt

        async def current(request: Request) -> Response:
            check_only(request, frozenset({"version"}))
            identity = await auth.caller(request)
            service, name = self._service(), request.path_params["name"]
            number = self._version(request, "version")
            if number is None or number == 0:
                _, latest = await self._run(service.current(self.caller(identity), name))
                return json_response(view_of(name, latest if number is None else None))
            return json_response(view_of(name, await self._run(service.version(self.caller(identity), name, number))))

        async def replace(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            body = await self._body(request, PlanChange)
            version = await self._run(self._service().replace(
                self.caller(identity), request.path_params["name"], body.plan, body.reason,
                base_version=body.base_version))
            self._audit(identity, "plan.change", request.path_params["name"], version)
            return json_response(view_of(request.path_params["name"], version))

        async def edit(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            body = await self._body(request, PlanEdit)
            version = await self._run(self._service().patch(
                self.caller(identity), request.path_params["name"], PlanPatch(upsert=body.upsert, remove=body.remove),
                body.reason, base_version=body.base_version))
            self._audit(identity, "plan.change", request.path_params["name"], version)
            return json_response(view_of(request.path_params["name"], version))

        async def versions(request: Request) -> Response:
            check_only(request, frozenset({"limit"}))
            identity = await auth.caller(request)
            limit = parse_int(request, "limit", default=1000, low=1, high=10_000)
            return json_response(await self._run(self._service().versions(
                self.caller(identity), request.path_params["name"], limit=limit)))

        async def diff(request: Request) -> Response:
            check_only(request, frozenset({"from", "to"}))
            identity = await auth.caller(request)
            first = self._version(request, "from", required=True)
            second = self._version(request, "to", required=True)
            assert first is not None and second is not None
            return json_response(await self._run(self._service().diff(
                self.caller(identity), request.path_params["name"], first, second)))

        async def revert(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            body = await self._body(request, PlanRevert)
            version = await self._run(self._service().revert(
                self.caller(identity), request.path_params["name"], body.version, body.reason))
            self._audit(identity, "plan.revert", request.path_params["name"], version)
            return json_response(view_of(request.path_params["name"], version))

        async def export(request: Request) -> Response:
            check_only(request, frozenset({"format", "version"}))
            identity = await auth.caller(request)
            return await self.export(identity, request.path_params["name"], fmt_of(request),
                                     self._version(request, "version"))

        async def import_route(request: Request) -> Response:
            check_only(request, frozenset({"format", "reason", "mode"}))
            identity = await auth.caller(request)
            fmt = fmt_of(request)
            mode = request.query_params.get("mode", "merge")
            if mode not in ("merge", "replace"):
                raise ApiError(400, "bad_parameter", "mode must be merge or replace")
            reason = request.query_params.get("reason", "")
            raw = await self._raw(request, json_only=False)
            return json_response(await self.import_plan(identity, request.path_params["name"], fmt, raw,
                                                        reason or f"imported from {fmt}", mode == "replace"))

        async def publish(request: Request) -> Response:
            check_only(request, frozenset({"package"}))
            identity = await auth.caller(request)
            flag = request.query_params.get("package", "false").lower()
            if flag not in ("true", "false", "1", "0"):
                raise ApiError(400, "bad_parameter", "package must be true or false")
            service, caller, name = self._service(), self.caller(identity), request.path_params["name"]
            sent = await self._run(service.publish(caller, name))
            package = await self._run(service.attach_package(caller, name)) if flag in ("true", "1") else None
            return json_response(Published(sent=sent, package=package))

        version_param = Param("version", "query", {"type": "integer", "minimum": 0}, "a version (default: the newest)")
        file_types: dict[str, Any] = {"application/zip": {"type": "string", "format": "binary"},
                                      KML: {"type": "string"}, GEOJSON: {"type": "object"}}
        fmt_param = Param("format", "query", {"type": "string", "enum": list(FORMATS), "default": "geojson"},
                          "file format")
        return [
            Endpoint("GET", prefix, current, "The mission's plan (newest version, or ?version=)", "plans",
                     {200: ("The plan (version 0: none yet)", PlanView), **_ERRORS}, params=(_NAME, version_param),
                     operation_id="getPlan"),
            Endpoint("PUT", prefix, replace, "Replace the plan (a new version, with a reason)", "plans",
                     {200: ("The new version", PlanView), **_ERRORS, **_BODY_ERRORS, **_CONFLICT},
                     body=PlanChange, params=(_NAME,), operation_id="replacePlan"),
            Endpoint("PATCH", prefix, edit, "Add, replace or remove plan items by id (a new version)", "plans",
                     {200: ("The new version", PlanView), **_ERRORS, **_BODY_ERRORS, **_CONFLICT},
                     body=PlanEdit, params=(_NAME,), operation_id="editPlan"),
            Endpoint("GET", prefix + "/versions", versions, "The plan's versions, oldest first", "plans",
                     {200: ("Versions (without their plans)", list[VersionInfo]), **_ERRORS},
                     params=(_NAME, Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10000},
                                          "the newest this many (default 1000)")),
                     operation_id="listPlanVersions"),
            Endpoint("GET", prefix + "/diff", diff, "What changed between two versions (0: before the first)",
                     "plans", {200: ("Added, removed and changed items", PlanDiff), **_ERRORS},
                     params=(_NAME, Param("from", "query", {"type": "integer", "minimum": 0}, "older version",
                                          required=True),
                             Param("to", "query", {"type": "integer", "minimum": 0}, "newer version", required=True)),
                     operation_id="diffPlan"),
            Endpoint("POST", prefix + "/revert", revert, "Restore an old version (as a new version)", "plans",
                     {200: ("The new version", PlanView), **_ERRORS, **_BODY_ERRORS}, body=PlanRevert,
                     params=(_NAME,), operation_id="revertPlan"),
            Endpoint("GET", prefix + "/export", export, "The plan as a TAK data package, KML or GeoJSON", "plans",
                     {200: ("The file", BINARY), **_ERRORS}, params=(_NAME, fmt_param, version_param),
                     operation_id="exportPlan"),
            Endpoint("POST", prefix + "/import", import_route,
                     "Import a TAK data package, KML or GeoJSON file into the plan (a new version)", "plans",
                     {200: ("The new version", PlanView), **_ERRORS, **_BODY_ERRORS},
                     body=Media(file_types),
                     params=(_NAME, fmt_param,
                             Param("reason", "query", {"type": "string", "maxLength": 500},
                                   "why (default: imported from <format>)"),
                             Param("mode", "query", {"type": "string", "enum": ["merge", "replace"],
                                                     "default": "merge"},
                                   "merge: add or replace items by id; replace: the file becomes the plan")),
                     operation_id="importPlan"),
            Endpoint("POST", prefix + "/publish", publish,
                     "Send the plan's drawings to the subscribers again (and add its data package to the mission)",
                     "plans", {200: ("Events sent, and the package's SHA-256", Published), **_ERRORS},
                     params=(_NAME, Param("package", "query", {"type": "boolean", "default": False},
                                          "also store the plan as a data package in the mission's contents")),
                     operation_id="publishPlan"),
        ]
