"""Reads of the picture: connected clients, live tracks and stored history, filtered by read groups."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.model.cot import CotEvent
from rallypoint.routing.envelope import Envelope
from rallypoint.storage.base import BBox, HistoryQuery, StoredEvent, in_bbox
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import (
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
from rallypoint.web.api.schemas import (
    ClientInfo,
    ErrorBody,
    GeoJsonCollection,
    GeoJsonFeature,
    GeoJsonGeometry,
    HistoryEvent,
    HistoryPage,
    Position,
    Track,
)
from rallypoint.web.context import RequestIdentity, WebContext

MAX_HISTORY = 5000
# Rows are filtered by group after the query, so ask the store for more than the caller wants.
_OVERFETCH = 4
_TIME = {"type": "string", "description": "epoch milliseconds or ISO 8601 time with zone"}
_BBOX = Param("bbox", "query", {"type": "string", "pattern": r"^[-0-9.eE+]+(,[-0-9.eE+]+){3}$"},
              "min_lon,min_lat,max_lon,max_lat (WGS-84 degrees)")
_TYPE = Param("type", "query", {"type": "string", "maxLength": 256}, "CoT type prefix, e.g. a-f")
_ERRORS = {400: ("Bad query parameter", ErrorBody), 401: ("Token not live", ErrorBody), 403: ("Refused", ErrorBody)}


def _position(event: CotEvent) -> Position:
    return Position(lat=event.point.lat, lon=event.point.lon, hae=event.point.hae)


def visible(identity: RequestIdentity, envelope: Envelope) -> bool:
    """Whether the caller may read an envelope of the live picture."""
    return identity.can_read(envelope.origin.groups)


def stored_groups(row: StoredEvent) -> list[str]:
    """The broadcast groups recorded with a stored event (empty for addressed events)."""
    return sorted(g for g in (row.group or "").split(",") if g)


def history_visible(identity: RequestIdentity, row: StoredEvent) -> bool:
    """Broadcast rows to readers of their groups; addressed rows to admins and their own sender."""
    groups = stored_groups(row)
    if groups:
        return identity.can_read(frozenset(groups))
    if identity.role == "admin":
        return True
    return identity.principal is not None and row.sender == identity.principal


class PictureApi:
    """``/api/clients``, ``/api/tracks`` and ``/api/history``."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    def clients_for(self, identity: RequestIdentity) -> list[ClientInfo]:
        """Connected clients whose reports the caller may read, by callsign."""
        out = []
        for uid, envelope in list(self._ctx.presence.sa.items()):
            event = envelope.event
            if not visible(identity, envelope):
                continue
            out.append(
                ClientInfo(
                    uid=uid, callsign=event.detail.callsign, group=event.detail.group_name,
                    role=event.detail.group_role, type=event.type, last_seen_ms=envelope.received_ms,
                    position=_position(event), principal=envelope.origin.principal,
                )
            )
        out.sort(key=lambda c: (c.callsign or "", c.uid))
        return out

    def tracks_for(
        self, identity: RequestIdentity, *, bbox: BBox | None, type_prefix: str | None, since_ms: int | None
    ) -> list[Track]:
        """Live (not stale) clients and items the caller may read, matching the filters."""
        now = self._ctx.clock.now_ms()
        presence = self._ctx.presence
        out: list[Track] = []
        for kind, table in (("client", presence.sa), ("item", presence.items)):
            for uid, envelope in list(table.items()):
                event = envelope.event
                if event.is_stale(now) or not visible(identity, envelope):
                    continue
                if type_prefix is not None and not event.type.startswith(type_prefix):
                    continue
                if since_ms is not None and event.time < since_ms:
                    continue
                if bbox is not None and not in_bbox(event.point.lon, event.point.lat, bbox):
                    continue
                out.append(
                    Track(
                        uid=uid, type=event.type, how=event.how, callsign=event.detail.callsign,
                        time_ms=event.time, stale_ms=event.stale, position=_position(event),
                        kind=kind,  # type: ignore[arg-type]
                        group=event.detail.group_name, speed=event.detail.speed, course=event.detail.course,
                    )
                )
        out.sort(key=lambda t: (t.time_ms, t.uid))
        return out

    async def history_for(self, identity: RequestIdentity, query: HistoryQuery) -> HistoryPage:
        """Stored events matching ``query`` that the caller may read (at most ``query.limit``)."""
        wanted = query.limit
        fetched = await self._ctx.store.query(
            HistoryQuery(
                since_ms=query.since_ms, until_ms=query.until_ms, uid=query.uid, type_prefix=query.type_prefix,
                bbox=query.bbox, limit=min(wanted * _OVERFETCH, MAX_HISTORY * _OVERFETCH) + 1, order=query.order,
            )
        )
        rows = [row for row in fetched if history_visible(identity, row)]
        events = [
            HistoryEvent(
                uid=r.uid, type=r.type, how=r.how, time_ms=r.time, start_ms=r.start, stale_ms=r.stale,
                position=Position(lat=r.lat, lon=r.lon, hae=r.hae), callsign=r.callsign,
                groups=stored_groups(r), xml=r.xml.decode("utf-8", "replace"),
            )
            for r in rows[:wanted]
        ]
        truncated = len(rows) > wanted or len(fetched) > wanted * _OVERFETCH
        return HistoryPage(events=events, count=len(events), truncated=truncated)

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth

        async def clients(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            return json_response(self.clients_for(identity))

        async def tracks(request: Request) -> Response:
            check_only(request, frozenset({"bbox", "type", "since", "format"}))
            identity = await auth.caller(request)
            fmt = request.query_params.get("format", "json")
            if fmt not in ("json", "geojson"):
                raise ApiError(400, "bad_parameter", "format: json or geojson")
            found = self.tracks_for(
                identity, bbox=parse_bbox(request), type_prefix=parse_text(request, "type"),
                since_ms=parse_time(request, "since"),
            )
            if fmt == "geojson":
                return json_response(geojson(found), headers={"Content-Type": "application/geo+json"})
            return json_response(found)

        async def history(request: Request) -> Response:
            check_only(request, frozenset({"since", "until", "uid", "type", "bbox", "limit", "order"}))
            identity = await auth.caller(request)
            order = request.query_params.get("order", "asc")
            if order not in ("asc", "desc"):
                raise ApiError(400, "bad_parameter", "order: asc or desc")
            query = HistoryQuery(
                since_ms=parse_time(request, "since"), until_ms=parse_time(request, "until"),
                uid=parse_text(request, "uid", max_length=512), type_prefix=parse_text(request, "type"),
                bbox=parse_bbox(request), limit=parse_int(request, "limit", default=500, low=1, high=MAX_HISTORY),
                order=order,  # type: ignore[arg-type]
            )
            return json_response(await self.history_for(identity, query))

        return [
            Endpoint("GET", "/api/clients", clients, "Connected clients the caller can see", "picture",
                     {200: ("Clients", list[ClientInfo]), **_ERRORS}, operation_id="listClients"),
            Endpoint(
                "GET", "/api/tracks", tracks, "Latest picture: clients' positions and live map items", "picture",
                {200: ("Tracks (GeoJSON FeatureCollection with format=geojson)", list[Track] | GeoJsonCollection),
                 **_ERRORS},
                params=(_BBOX, _TYPE, Param("since", "query", _TIME, "only items reported at or after this time"),
                        Param("format", "query", {"type": "string", "enum": ["json", "geojson"]}, "answer format")),
                operation_id="listTracks",
            ),
            Endpoint(
                "GET", "/api/history", history, "Stored events, oldest first (order=desc for newest first)",
                "picture", {200: ("Events", HistoryPage), **_ERRORS},
                params=(
                    Param("since", "query", _TIME, "window start (inclusive)"),
                    Param("until", "query", _TIME, "window end (exclusive)"),
                    Param("uid", "query", {"type": "string", "maxLength": 512}, "one uid only"),
                    _TYPE, _BBOX,
                    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY}, "max events"),
                    Param("order", "query", {"type": "string", "enum": ["asc", "desc"]}, "time order"),
                ),
                operation_id="queryHistory",
            ),
        ]


def geojson(tracks: list[Track]) -> GeoJsonCollection:
    """Tracks as a GeoJSON FeatureCollection (coordinates ``[lon, lat, hae]``)."""
    return GeoJsonCollection(type="FeatureCollection", features=list(_features(tracks)))


def _features(tracks: list[Track]) -> Iterator[GeoJsonFeature]:
    for t in tracks:
        yield GeoJsonFeature(
            type="Feature", id=t.uid,
            geometry=GeoJsonGeometry(type="Point", coordinates=[t.position.lon, t.position.lat, t.position.hae]),
            properties={
                "type": t.type, "how": t.how, "callsign": t.callsign, "time_ms": t.time_ms, "stale_ms": t.stale_ms,
                "kind": t.kind, "group": t.group, "speed": t.speed, "course": t.course,
            },
        )
