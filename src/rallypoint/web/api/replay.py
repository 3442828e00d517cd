"""``/api/replay``: a time window and area of stored history, oldest first, for after-action review.

The window rules live in ``services.replay`` (both ends required, ``since < until``, at most 31
days). Rows pass the same group rule as ``/api/history`` (``history.reader_of``): a caller sees the
broadcast rows of their groups, addressed rows only they sent (all of them for an admin).

* ``GET /api/replay``: one page (``limit`` up to 5000) of the window; ``next`` chains pages.
* ``GET /api/replay/export?format=kml|geojson|csv``: the whole window as a file, at most
  ``MAX_EXPORT`` events (a larger window is a 413 asking for a smaller one, never a cut-off file).
* ``GET /replay``: the player page (``static/replay.html``, its script and style).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from rallypoint.services.replay import ReplayError, ReplayWindow, window, window_rows
from rallypoint.storage.base import StoredEvent
from rallypoint.storage.export import to_csv, to_geojson, to_kml
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import (
    BBOX_PARAMS,
    ApiError,
    Endpoint,
    Media,
    Param,
    check_only,
    parse_bbox,
    parse_int,
    parse_text,
    parse_time,
)
from rallypoint.web.api.history import (
    DEFAULT_LIMIT,
    EXERCISE_PARAM,
    MAX_HISTORY,
    HistoryApi,
    parse_cursor,
    parse_exercise,
    reader_of,
)
from rallypoint.web.api.schemas import ErrorBody, HistoryPage
from rallypoint.web.context import WebContext

log = logging.getLogger(__name__)

MAX_EXPORT = 100_000
MAX_CONCURRENT_EXPORTS = 2
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The player's files, by name: nothing else is served from these routes.
_ASSETS = {"replay.html": "text/html; charset=utf-8", "replay.js": "text/javascript; charset=utf-8",
           "replay.css": "text/css; charset=utf-8"}
_FORMATS = {
    "kml": ("application/vnd.google-earth.kml+xml", "kml"),
    "geojson": ("application/geo+json", "geojson"),
    "csv": ("text/csv; charset=utf-8", "csv"),
}
_TIME = {"type": "string", "description": "epoch milliseconds or ISO 8601 time with zone"}
_ERRORS = {400: ("Bad query parameter", ErrorBody), 401: ("Token not live", ErrorBody), 403: ("Refused", ErrorBody)}
_WINDOW_PARAMS = (
    Param("since", "query", _TIME, "window start (inclusive)", required=True),
    Param("until", "query", _TIME, "window end (exclusive); at most 31 days after since", required=True),
    Param("type", "query", {"type": "string", "maxLength": 256}, "CoT type prefix, e.g. a-f"),
    *BBOX_PARAMS,
    EXERCISE_PARAM,
)
_FILES = Media({media: {"type": "string", "format": "binary"} for media, _ in _FORMATS.values()})


def parse_window(request: Request) -> ReplayWindow:
    """The window of the query (400 with the reason when it is missing, inverted or too long)."""
    since, until = parse_time(request, "since"), parse_time(request, "until")
    try:
        return window(since, until, bbox=parse_bbox(request), type_prefix=parse_text(request, "type"),
                      exercise=parse_exercise(request))
    except ReplayError as exc:
        raise ApiError(400, "bad_window", str(exc)) from exc


def render(rows: list[StoredEvent], fmt: str) -> bytes:
    """The rows as a file of format ``fmt`` (kml, geojson or csv)."""
    match fmt:
        case "kml":
            return to_kml(rows)
        case "geojson":
            return msgspec.json.encode(to_geojson(rows))
        case _:
            return to_csv(rows, senders=False)


class ReplayApi:
    """``GET /api/replay``, ``GET /api/replay/export`` and the player page."""

    def __init__(self, ctx: WebContext, auth: ApiAuth, *, max_export: int = MAX_EXPORT) -> None:
        self._ctx = ctx
        self._max_export = max_export
        self._renders = asyncio.Semaphore(MAX_CONCURRENT_EXPORTS)
        self._auth = auth
        self._history = HistoryApi(ctx, auth)
        self.pages = 0
        self.exports = 0
        self.refused = 0
        ctx.metrics.add_counters(self._counters)

    def _counters(self) -> Iterable[tuple[str, str, float]]:
        return [
            ("rallypoint_replay_pages", "Replay window pages served", float(self.pages)),
            ("rallypoint_replay_exports", "Replay windows exported as files", float(self.exports)),
            ("rallypoint_replay_refused", "Replay requests refused (bad window or parameter, window too large)",
             float(self.refused)),
        ]

    def _refused(self, request: Request, exc: ApiError) -> None:
        self.refused += 1
        log.info("replay request refused", extra={"status": exc.status, "reason": exc.detail[:200],
                                                  "path": request.url.path})

    async def _page(self, request: Request) -> Response:
        try:
            answer = await self._read_page(request)
        except ApiError as exc:
            if exc.status in (400, 413):
                self._refused(request, exc)
            raise
        self.pages += 1
        return answer

    async def _export(self, request: Request) -> Response:
        try:
            answer = await self._read_export(request)
        except ApiError as exc:
            if exc.status in (400, 413):
                self._refused(request, exc)
            raise
        self.exports += 1
        return answer

    async def _read_page(self, request: Request) -> Response:
        check_only(request, frozenset({"since", "until", "type", "bbox", "antimeridian", "limit", "cursor",
                                       "exercise"}))
        identity = await self._auth.caller(request)
        win = parse_window(request)
        limit = parse_int(request, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_HISTORY)
        query = win.query(limit=limit, reader=None, after=parse_cursor(request))
        page = await self._history.history_for(identity, query)
        return Response(msgspec.json.encode(page), media_type="application/json")

    async def _read_export(self, request: Request) -> Response:
        check_only(request, frozenset({"since", "until", "type", "bbox", "antimeridian", "format", "exercise"}))
        identity = await self._auth.caller(request)
        win = parse_window(request)
        fmt = request.query_params.get("format", "")
        if fmt not in _FORMATS:
            raise ApiError(400, "bad_parameter", "format: kml, geojson or csv")
        rows = [row async for row in window_rows(self._ctx.store, win, reader=reader_of(identity),
                                                  limit=self._max_export + 1)]
        if len(rows) > self._max_export:
            raise ApiError(413, "window_too_large", f"the window holds more than {self._max_export} events: "
                           "choose a shorter window or a smaller area")
        media, ext = _FORMATS[fmt]
        log.info("replay export", extra={"principal": identity.principal, "format": fmt, "events": len(rows)})
        name = f"rallypoint-replay-{win.since_ms}-{win.until_ms}.{ext}"
        # A large window costs seconds of CPU (bench/replay.py): off the event loop, a few at a time.
        async with self._renders:
            body = await asyncio.to_thread(render, rows, fmt)
        return Response(body, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def _static(self, request: Request) -> Response:
        name = request.path_params.get("name", "replay.html")
        media = _ASSETS.get(name)
        if media is None:
            raise ApiError(404, "not_found", "no such file")
        return FileResponse(STATIC_DIR / name, media_type=media)

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        return [
            Endpoint(
                "GET", "/api/replay", self._page, "A window of stored history for replay, oldest first", "picture",
                {200: ("Events", HistoryPage), **_ERRORS},
                params=(
                    *_WINDOW_PARAMS,
                    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY}, "max events"),
                    Param("cursor", "query", {"type": "string", "pattern": r"^-?[0-9]{1,16}\.[0-9]{1,19}$"},
                          "continue after the previous page: its 'next' value (same window)"),
                ),
                operation_id="replayWindow",
            ),
            Endpoint(
                "GET", "/api/replay/export", self._export, "A window of stored history as KML, GeoJSON or CSV",
                "picture",
                {200: ("The file", _FILES), **_ERRORS, 413: ("More than 100000 events in the window", ErrorBody)},
                params=(*_WINDOW_PARAMS,
                        Param("format", "query", {"type": "string", "enum": list(_FORMATS)}, "file format",
                              required=True)),
                operation_id="exportReplayWindow",
            ),
            Endpoint("GET", "/replay", self._static, "The replay player page", "meta",
                     {200: ("HTML page", None)}, security=(), operation_id="replayPage"),
            Endpoint("GET", "/replay/{name}", self._static, "A file of the replay player page", "meta",
                     {200: ("Script or style", None), 404: ("No such file", ErrorBody)}, security=(),
                     params=(Param("name", "path", {"type": "string"}, "replay.js or replay.css", required=True),),
                     operation_id="replayPageFile"),
        ]

