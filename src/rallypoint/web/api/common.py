"""Plumbing shared by the native API handlers: the route table, errors, bodies and query parameters."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rallypoint.errors import LimitExceeded
from rallypoint.protocol.validate import is_xml_text
from rallypoint.storage.base import BBox
from rallypoint.storage.bbox import BBoxError, bbox_from_text
from rallypoint.validation_errors import InvalidJson, decode_json
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.enrollment_auth import read_limited_body

log = logging.getLogger(__name__)

JSON = "application/json"
# Characters XML 1.0 cannot carry at all: refused up front instead of producing a broken event.
Handler = Callable[[Request], Awaitable[Response]]
S = TypeVar("S")


class ApiError(Exception):
    """An error answer: HTTP status, a stable label and an explanation; ``headers`` are added."""

    def __init__(self, status: int, error: str, detail: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


@dataclass(frozen=True)
class Param:
    """A query or path parameter, as OpenAPI describes it."""

    name: str
    where: str  # "query" or "path"
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


# Shared by every route that filters by area, so they document (and parse) the box the same way.
BBOX_PARAMS = (
    Param("bbox", "query", {"type": "string", "pattern": r"^[-0-9.eE+]+(,[-0-9.eE+]+){3}$"},
          "west,south,east,north (min_lon,min_lat,max_lon,max_lat), WGS-84 degrees; west > east only "
          "with antimeridian=true"),
    Param("antimeridian", "query", {"type": "boolean", "default": False},
          "the bbox crosses the 180th meridian (its west is greater than its east)"),
)


@dataclass(frozen=True)
class Media:
    """A body or answer that is not JSON: media type -> JSON schema of its content."""

    content: dict[str, dict[str, Any]]


BINARY = Media({"application/octet-stream": {"type": "string", "format": "binary"}})


@dataclass(frozen=True)
class Endpoint:
    """One operation: how it is served and how it is documented."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    responses: dict[int, tuple[str, Any]]
    body: type | Media | None = None
    params: tuple[Param, ...] = ()
    security: tuple[str, ...] = ("bearer", "mutualTLS")
    operation_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Another media type a status may answer with, same schema (``application/geo+json``).
    alt_media: dict[int, str] = field(default_factory=dict)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``value`` (structs, lists, dicts) encoded as JSON."""
    return Response(msgspec.json.encode(value), status_code=status, media_type=JSON, headers=headers)


def error_response(exc: ApiError) -> Response:
    """The JSON body of an :class:`ApiError`."""
    return json_response(ErrorBody(exc.error, exc.detail), exc.status, exc.headers)


def guarded(handler: Handler) -> Handler:
    """Turn :class:`ApiError` and body validation errors into JSON answers."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc)

    return endpoint


def routes_of(endpoints: Sequence[Endpoint]) -> list[BaseRoute]:
    """Starlette routes for the table (one route per method: Starlette answers 405 for the rest)."""
    return [Route(e.path, guarded(e.handler), methods=[e.method]) for e in endpoints]


async def read_body(request: Request, struct: type[S], limit: int) -> S:
    """Decode the JSON body strictly into ``struct``: 413 too large, 400 malformed, 422 invalid."""
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() not in ("application/json", ""):
        raise ApiError(415, "unsupported_media_type", "send application/json")
    try:
        raw = await read_limited_body(request, limit)
    except LimitExceeded as exc:
        raise ApiError(413, "body_too_large", f"at most {limit} bytes") from exc
    if not raw.strip():
        raise ApiError(400, "bad_json", "a JSON body is required")
    try:
        return decode_json(raw, struct)
    except InvalidJson as exc:
        status, label = (400, "bad_json") if exc.malformed else (422, "invalid")
        raise ApiError(status, label, exc.detail) from exc


def xml_safe(field: str, value: str | None) -> None:
    """422 unless ``value`` can travel inside a CoT event (XML 1.0 characters only)."""
    if value is not None and not is_xml_text(value):
        raise ApiError(422, "invalid", f"{field}: contains characters XML cannot carry")


def parse_time(request: Request, name: str) -> int | None:
    """Query parameter as epoch milliseconds: an integer, or an ISO 8601 time with a zone."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if text.lstrip("-").isdigit() and len(text) <= 16:
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"{name}: epoch milliseconds or ISO 8601 time expected") from exc
    if parsed.tzinfo is None:
        raise ApiError(400, "bad_parameter", f"{name}: the time needs a zone (e.g. Z)")
    try:
        return int(parsed.timestamp() * 1000)
    except (OverflowError, ValueError, OSError) as exc:
        raise ApiError(400, "bad_parameter", f"{name}: out of range") from exc


def parse_bbox(request: Request) -> BBox | None:
    """``bbox=west,south,east,north``; west > east (crossing the antimeridian) only with ``antimeridian=true``."""
    raw = request.query_params.get("bbox")
    crossing = request.query_params.get("antimeridian", "false").strip().lower()
    if crossing not in ("true", "false", "1", "0"):
        raise ApiError(400, "bad_parameter", "antimeridian must be true or false")
    if raw is None or raw == "":
        if crossing in ("true", "1"):
            raise ApiError(400, "bad_parameter", "antimeridian=true only qualifies a bbox; give the bbox too")
        return None
    try:
        return bbox_from_text(raw, antimeridian=crossing in ("true", "1"), crossing_hint="antimeridian=true")
    except BBoxError as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from exc


def parse_int(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter within ``[low, high]``."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or len(raw) > 12:
        raise ApiError(400, "bad_parameter", f"{name}: integer {low}-{high} expected")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, "bad_parameter", f"{name}: integer {low}-{high} expected")
    return value


def parse_text(request: Request, name: str, *, max_length: int = 256) -> str | None:
    """A short free-text query parameter."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_length or not raw.isprintable():
        raise ApiError(400, "bad_parameter", f"{name}: at most {max_length} printable characters")
    return raw


def check_only(request: Request, allowed: frozenset[str]) -> None:
    """Refuse unknown or repeated query parameters (catches typos such as ``?sinse=``)."""
    seen: set[str] = set()
    for key, _ in request.query_params.multi_items():
        if key not in allowed:
            raise ApiError(400, "bad_parameter", f"unknown query parameter {key[:40]!r}")
        if key in seen:
            raise ApiError(400, "bad_parameter", f"{key} given more than once")
        seen.add(key)
