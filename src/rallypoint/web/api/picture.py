"""Reads of the live picture: connected clients and tracks, filtered by read groups (history: ``history.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.model.cot import CotEvent
from rallypoint.model.fix import has_fix
from rallypoint.routing.envelope import Envelope
from rallypoint.services.presence import Presence
from rallypoint.storage.base import BBox, in_bbox
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import (
    BBOX_PARAMS,
    ApiError,
    Endpoint,
    Param,
    check_only,
    json_response,
    parse_bbox,
    parse_text,
    parse_time,
)
from rallypoint.web.api.schemas import (
    ClientInfo,
    DeliveryInfo,
    ErrorBody,
    GeoJsonCollection,
    GeoJsonFeature,
    GeoJsonGeometry,
    Position,
    Track,
)
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.drawings import drawing_of

_TIME = {"type": "string", "description": "epoch milliseconds or ISO 8601 time with zone"}
_TYPE = Param("type", "query", {"type": "string", "maxLength": 256}, "CoT type prefix, e.g. a-f")
_ERRORS = {400: ("Bad query parameter", ErrorBody), 401: ("Token not live", ErrorBody), 403: ("Refused", ErrorBody)}


def _position(event: CotEvent) -> Position | None:
    """Where the event is, or None for a no-fix report: never 0,0 on a map."""
    point = event.point
    return Position(lat=point.lat, lon=point.lon, hae=point.hae) if has_fix(point.lat, point.lon) else None


def visible(identity: RequestIdentity, envelope: Envelope) -> bool:
    """Whether the caller may read an envelope of the live picture."""
    return identity.can_read(envelope.origin.groups)


def track_of(uid: str, envelope: Envelope, kind: Literal["client", "item"]) -> Track:
    """One entry of the live picture as the API shows it."""
    event = envelope.event
    position = _position(event)
    return Track(
        uid=uid, type=event.type, how=event.how, callsign=event.detail.callsign,
        time_ms=event.time, stale_ms=event.stale, position=position, kind=kind,
        group=event.detail.group_name, speed=event.detail.speed, course=event.detail.course,
        no_fix=position is None, drawing=drawing_of(event) if kind == "item" else None, exercise=event.exercise,
    )


def live_tracks(
    presence: Presence, identity: RequestIdentity, now_ms: int, *,
    bbox: BBox | None = None, type_prefix: str | None = None, since_ms: int | None = None,
) -> list[Track]:
    """Live (not stale) clients and items of ``presence`` the caller may read, oldest report first.

    ``/api/tracks`` and the picture that opens ``/api/live`` both come from here.
    """
    tables: tuple[tuple[Literal["client", "item"], dict[str, Envelope]], ...] = (
        ("client", presence.sa), ("item", presence.items),
    )
    out: list[Track] = []
    for kind, table in tables:
        for uid, envelope in list(table.items()):
            event = envelope.event
            if event.is_stale(now_ms) or not visible(identity, envelope):
                continue
            if type_prefix is not None and not event.type.startswith(type_prefix):
                continue
            if since_ms is not None and event.time < since_ms:
                continue
            if bbox is not None and not (
                has_fix(event.point.lat, event.point.lon) and in_bbox(event.point.lon, event.point.lat, bbox)
            ):
                continue
            out.append(track_of(uid, envelope, kind))
    out.sort(key=lambda t: (t.time_ms, t.uid))
    return out


def delivery_of(session_id: str, stats: dict[str, int]) -> DeliveryInfo:
    """A session's delivery statistics as the API shows them."""
    return DeliveryInfo(
        session=session_id, queued=stats.get("queued", 0), queued_bytes=stats.get("queued_bytes", 0),
        coalesced=stats.get("coalesced", 0), dropped=stats.get("dropped", 0), thinned=stats.get("thinned", 0),
        held=stats.get("held", 0), budget_bytes_per_s=stats.get("budget_bytes_per_s", 0),
        thinning=bool(stats.get("thinning", 0)), paused=bool(stats.get("paused", 0)),
    )


class PictureApi:
    """``/api/clients`` and ``/api/tracks``."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    def clients_for(self, identity: RequestIdentity) -> list[ClientInfo]:
        """Connected clients whose reports the caller may read, by callsign."""
        out = []
        # Admins also see how delivery to each client's session is going (outbox, budget, pauses).
        sessions = {s.id: s for s in self._ctx.sessions} if identity.role == "admin" else {}
        for uid, envelope in list(self._ctx.presence.sa.items()):
            event = envelope.event
            if not visible(identity, envelope):
                continue
            session = sessions.get(envelope.origin.session_id)
            position = _position(event)
            out.append(
                ClientInfo(
                    uid=uid, callsign=event.detail.callsign, group=event.detail.group_name,
                    role=event.detail.group_role, type=event.type, last_seen_ms=envelope.received_ms,
                    position=position, principal=envelope.origin.principal,
                    delivery=None if session is None else delivery_of(session.id, session.statistics()),
                    no_fix=position is None,
                )
            )
        out.sort(key=lambda c: (c.callsign or "", c.uid))
        return out

    def tracks_for(
        self, identity: RequestIdentity, *, bbox: BBox | None, type_prefix: str | None, since_ms: int | None
    ) -> list[Track]:
        """Live (not stale) clients and items the caller may read, matching the filters."""
        return live_tracks(
            self._ctx.presence, identity, self._ctx.clock.now_ms(), bbox=bbox, type_prefix=type_prefix,
            since_ms=since_ms,
        )

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth

        async def clients(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            return json_response(self.clients_for(identity))

        async def tracks(request: Request) -> Response:
            check_only(request, frozenset({"bbox", "antimeridian", "type", "since", "format"}))
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

        return [
            Endpoint("GET", "/api/clients", clients, "Connected clients the caller can see", "picture",
                     {200: ("Clients", list[ClientInfo]), **_ERRORS}, operation_id="listClients"),
            Endpoint(
                "GET", "/api/tracks", tracks, "Latest picture: clients' positions and live map items", "picture",
                {200: ("Tracks (GeoJSON FeatureCollection with format=geojson)", list[Track] | GeoJsonCollection),
                 **_ERRORS},
                params=(*BBOX_PARAMS, _TYPE,
                        Param("since", "query", _TIME, "only items reported at or after this time"),
                        Param("format", "query", {"type": "string", "enum": ["json", "geojson"]}, "answer format")),
                operation_id="listTracks", alt_media={200: "application/geo+json"},
            ),
        ]


def geojson(tracks: list[Track]) -> GeoJsonCollection:
    """Tracks as a GeoJSON FeatureCollection (coordinates ``[lon, lat, hae]``).

    A track without a fix has a null geometry (RFC 7946 3.2: an unlocated feature) and ``no_fix: true``.
    """
    return GeoJsonCollection(type="FeatureCollection", features=list(_features(tracks)))


def _features(tracks: list[Track]) -> Iterator[GeoJsonFeature]:
    for t in tracks:
        p = t.position
        geometry = None if p is None else GeoJsonGeometry(type="Point", coordinates=[p.lon, p.lat, p.hae])
        properties: dict[str, str | int | float | None] = {
            "type": t.type, "how": t.how, "callsign": t.callsign, "time_ms": t.time_ms, "stale_ms": t.stale_ms,
            "kind": t.kind, "group": t.group, "speed": t.speed, "course": t.course, "no_fix": t.no_fix,
            "exercise": t.exercise,
        }
        d = t.drawing
        if d is not None:
            # A drawing's outline replaces its point; its colours ride in the properties (web.drawings).
            if d.geometry != "Point" and d.coordinates is not None:
                geometry = GeoJsonGeometry(type=d.geometry, coordinates=d.coordinates)
            properties.update(drawing=d.geometry, stroke=d.stroke, stroke_opacity=d.stroke_opacity,
                              stroke_width=d.stroke_width, fill=d.fill, fill_opacity=d.fill_opacity,
                              remarks=d.remarks)
        yield GeoJsonFeature(type="Feature", id=t.uid, geometry=geometry, properties=properties)
