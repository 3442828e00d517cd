"""``/api/history``: stored events the caller may read, a page at a time.

The store applies the group rule itself (``HistoryQuery.reader``), so a page holds up to ``limit``
readable rows however rare they are among other groups' rows. Pages chain with a keyset cursor
(``next`` in the answer, ``cursor`` in the next request): it names the last row returned by time
and store key, so rows appended meanwhile never shift a page and no readable row is skipped.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.model.exercise import exercise_filter
from rallypoint.storage.base import HistoryQuery, HistoryReader, StoredEvent
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import (
    BBOX_PARAMS,
    ApiError,
    Endpoint,
    Param,
    check_only,
    json_response,
    parse_bbox,
    parse_int,
    parse_text,
    parse_time,
)
from rallypoint.web.api.schemas import ErrorBody, HistoryEvent, HistoryPage, Position
from rallypoint.web.context import RequestIdentity, WebContext

MAX_HISTORY = 5000
DEFAULT_LIMIT = 500
_CURSOR = re.compile(r"^(-?\d{1,16})\.(\d{1,19})$")
_TIME = {"type": "string", "description": "epoch milliseconds or ISO 8601 time with zone"}
EXERCISE_PARAM = Param("exercise", "query", {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"},
                       "any (default), none (live traffic only) or one exercise's id")
_ERRORS = {400: ("Bad query parameter", ErrorBody), 401: ("Token not live", ErrorBody), 403: ("Refused", ErrorBody)}


def reader_of(identity: RequestIdentity) -> HistoryReader:
    """Broadcast rows to readers of their groups; addressed rows to admins and their own sender."""
    return HistoryReader(groups=identity.read_groups, sender=identity.principal,
                         all_addressed=identity.role == "admin")


def parse_exercise(request: Request) -> str:
    """``exercise``: ``any`` (default), ``none`` (live traffic only) or an exercise id; 400 otherwise."""
    try:
        return exercise_filter(request.query_params.get("exercise"))
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from None


def format_cursor(time_ms: int, key: int) -> str:
    """The opaque ``next`` value: the last row's time and store key."""
    return f"{time_ms}.{key}"


def parse_cursor(request: Request) -> tuple[int, int] | None:
    """``cursor`` as (time, key); 400 when it is not one this API handed out."""
    raw = request.query_params.get("cursor")
    if raw is None or raw == "":
        return None
    match = _CURSOR.match(raw)
    if match is None or int(match[2]) > 2**63 - 1:
        raise ApiError(400, "bad_parameter", "cursor: use the 'next' value of the previous page")
    return int(match[1]), int(match[2])


def history_event(row: StoredEvent) -> HistoryEvent:
    """A stored row as the API shows it."""
    return HistoryEvent(
        uid=row.uid, type=row.type, how=row.how, time_ms=row.time, start_ms=row.start, stale_ms=row.stale,
        position=Position(lat=row.lat, lon=row.lon, hae=row.hae), callsign=row.callsign,
        groups=sorted(row.groups), xml=row.xml.decode("utf-8", "replace"), exercise=row.exercise,
    )


class HistoryApi:
    """``GET /api/history``."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    async def history_for(self, identity: RequestIdentity, query: HistoryQuery) -> HistoryPage:
        """One page of readable rows matching ``query`` (``next`` set when more may follow)."""
        wanted = query.limit
        # One row more than asked tells whether another page exists.
        keyed = await self._ctx.store.page(
            HistoryQuery(
                since_ms=query.since_ms, until_ms=query.until_ms, uid=query.uid, type_prefix=query.type_prefix,
                bbox=query.bbox, limit=wanted + 1, order=query.order, reader=reader_of(identity),
                after=query.after, exercise=query.exercise,
            )
        )
        shown = keyed[:wanted]
        more = len(keyed) > wanted
        cursor = format_cursor(shown[-1][1].time, shown[-1][0]) if more and shown else None
        events = [history_event(row) for _, row in shown]
        return HistoryPage(events=events, count=len(events), truncated=more, next=cursor)

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth

        async def history(request: Request) -> Response:
            check_only(request, frozenset({"since", "until", "uid", "type", "bbox", "antimeridian", "limit", "order",
                                           "cursor", "exercise"}))
            identity = await auth.caller(request)
            order = request.query_params.get("order", "asc")
            if order not in ("asc", "desc"):
                raise ApiError(400, "bad_parameter", "order: asc or desc")
            query = HistoryQuery(
                since_ms=parse_time(request, "since"), until_ms=parse_time(request, "until"),
                uid=parse_text(request, "uid", max_length=512), type_prefix=parse_text(request, "type"),
                bbox=parse_bbox(request),
                limit=parse_int(request, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_HISTORY),
                order=order,  # type: ignore[arg-type]
                after=parse_cursor(request), exercise=parse_exercise(request),
            )
            return json_response(await self.history_for(identity, query))

        return [
            Endpoint(
                "GET", "/api/history", history, "Stored events, oldest first (order=desc for newest first)",
                "picture", {200: ("Events", HistoryPage), **_ERRORS},
                params=(
                    Param("since", "query", _TIME, "window start (inclusive)"),
                    Param("until", "query", _TIME, "window end (exclusive)"),
                    Param("uid", "query", {"type": "string", "maxLength": 512}, "one uid only"),
                    Param("type", "query", {"type": "string", "maxLength": 256}, "CoT type prefix, e.g. a-f"),
                    *BBOX_PARAMS,
                    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY}, "max events"),
                    Param("order", "query", {"type": "string", "enum": ["asc", "desc"]}, "time order"),
                    Param("cursor", "query", {"type": "string", "pattern": r"^-?[0-9]{1,16}\.[0-9]{1,19}$"},
                          "continue after the previous page: its 'next' value (same filters and order)"),
                    EXERCISE_PARAM,
                ),
                operation_id="queryHistory",
            ),
        ]
