"""``/api/items``: map items drawn by API callers (the picture's drawing panel), sent as ATAK sends them.

A marker is a spot-map marker (``b-m-p-s-m``), a line or polygon a free-form drawing (``u-d-f``), a
rectangle ``u-d-r``, a circle ``u-d-c-c`` and a route ``b-m-r`` with ``b-m-p-w`` waypoints: the CoT
types and detail elements of ATAK's own exports (``docs/web.md``, "Drawing"). The caller is the
author: the item travels in the caller's write groups through ``Ingest.accept`` like a TAK client's,
and only its author (or an admin who reads it) may replace or delete it.
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Annotated, Literal
from xml.sax.saxutils import escape, quoteattr

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rallypoint.delivery.dispatcher import resolve
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.plans_cot import delete_event
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Param, check_only, json_response, read_body, xml_safe
from rallypoint.web.api.picture import track_of
from rallypoint.web.api.schemas import ErrorBody, Track
from rallypoint.web.context import RequestIdentity, WebContext

log = logging.getLogger(__name__)

UNKNOWN = 9999999.0
MAX_VERTICES = 500
KINDS = {"marker": "b-m-p-s-m", "line": "u-d-f", "polygon": "u-d-f", "rectangle": "u-d-r", "circle": "u-d-c-c",
         "route": "b-m-r"}
_LEAST = {"marker": 1, "line": 2, "polygon": 3, "rectangle": 4, "circle": 1, "route": 2}
_MOST = {"marker": 1, "line": MAX_VERTICES, "polygon": MAX_VERTICES, "rectangle": 4, "circle": 1,
         "route": MAX_VERTICES}

Coordinate = Annotated[list[float], msgspec.Meta(min_length=2, max_length=2, description="[lon, lat], WGS-84")]


class ItemRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A map item to draw (or, with the ``uid`` of one you drew, to replace)."""

    kind: Literal["marker", "line", "polygon", "rectangle", "circle", "route"]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    coordinates: Annotated[list[Coordinate], msgspec.Meta(min_length=1, max_length=MAX_VERTICES)]
    radius_m: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] | None = None
    color: Annotated[str, msgspec.Meta(pattern="^#[0-9a-fA-F]{6}$")] = "#ff0000"
    fill_opacity: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.25
    remarks: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    uid: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")] | None = None
    stale_s: Annotated[int, msgspec.Meta(ge=60, le=30 * 86_400)] = 86_400


class ItemResult(msgspec.Struct, frozen=True):
    """The item sent: its uid and CoT type, and how many connected receivers it went to."""

    uid: str
    type: str
    kind: str
    name: str
    recipients: int


class ItemDeleted(msgspec.Struct, frozen=True):
    """The item's delete (``t-x-d-d`` with ``__forcedelete``) was sent."""

    uid: str
    deleted: bool
    recipients: int


def argb(colour: str, alpha: float = 1.0) -> int:
    """``#rrggbb`` and an opacity as the signed 32-bit ARGB integer ATAK writes."""
    value = (round(alpha * 255) << 24) | int(colour[1:], 16)
    return value - (1 << 32) if value >= 1 << 31 else value


def _check(body: ItemRequest) -> list[tuple[float, float]]:
    """The request's vertices as (lat, lon); 422 for a wrong count, a position off the globe or bad text."""
    xml_safe("name", body.name)
    xml_safe("remarks", body.remarks)
    least, most = _LEAST[body.kind], _MOST[body.kind]
    if not least <= len(body.coordinates) <= most:
        count = str(least) if least == most else f"{least} to {most}"
        raise ApiError(422, "invalid", f"coordinates: a {body.kind} takes {count} positions")
    points = []
    for lon, lat in body.coordinates:
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise ApiError(422, "invalid", "coordinates: [lon, lat] with -180 <= lon <= 180, -90 <= lat <= 90")
        points.append((lat, lon))
    if body.kind == "circle" and body.radius_m is None:
        raise ApiError(422, "invalid", "radius_m: a circle needs its radius in metres")
    return points


def item_event(body: ItemRequest, uid: str, principal: str, author_uid: str, now_ms: int) -> CotEvent:
    """The CoT event ATAK would send for ``body`` (validated by :func:`_check`)."""
    points = _check(body)
    stroke = argb(body.color)
    common = (f"<contact callsign={quoteattr(body.name)}/><remarks>{escape(body.remarks)}</remarks><archive/>")
    closed = body.kind in ("polygon", "rectangle", "circle")
    shape_style = (f"<strokeColor value=\"{stroke}\"/><strokeWeight value=\"3.0\"/>"
                   + (f"<fillColor value=\"{argb(body.color, body.fill_opacity)}\"/>" if closed else ""))
    where = points[0]
    match body.kind:
        case "marker":
            detail = (f"<status readiness=\"true\"/><archive/>"
                      f"<link uid={quoteattr(author_uid)} type=\"a-f-G-U-C\" parent_callsign={quoteattr(principal)}"
                      f" relation=\"p-p\"/>{common}<color argb=\"{stroke}\"/>"
                      f"<usericon iconsetpath=\"COT_MAPPING_SPOTMAP/b-m-p-s-m/{stroke}\"/>")
            how = "h-g-i-g-o"
        case "circle":
            radius = body.radius_m or 0.0
            detail = (f"<shape><ellipse major=\"{radius!r}\" minor=\"{radius!r}\" angle=\"360\"/>"
                      f"<link uid={quoteattr(uid + '.Style')} type=\"b-x-KmlStyle\" relation=\"p-c\"><Style>"
                      f"<LineStyle><color>{stroke & 0xFFFFFFFF:08x}</color><width>3.0</width></LineStyle>"
                      f"<PolyStyle><color>{argb(body.color, body.fill_opacity) & 0xFFFFFFFF:08x}</color></PolyStyle>"
                      f"</Style></link></shape>{shape_style}{common}<labels_on value=\"true\"/>")
            how = "h-e"
        case "route":
            links = "".join(
                f"<link uid={quoteattr(f'{uid}.{i}')} callsign={quoteattr(_waypoint_name(body.name, i))}"
                f" type=\"b-m-p-w\" point={quoteattr(f'{lat!r},{lon!r}')} remarks=\"\" relation=\"c\"/>"
                for i, (lat, lon) in enumerate(points)
            )
            detail = (f"{links}<link_attr planningmethod=\"Infil\" color=\"{stroke}\" method=\"Walking\" prefix=\"CP\""
                      f" type=\"On Foot\" stroke=\"3\" direction=\"Infil\" routetype=\"Primary\""
                      f" order=\"Ascending Check Points\"/><strokeColor value=\"{stroke}\"/>"
                      f"<strokeWeight value=\"3.0\"/><__routeinfo><__navcues/></__routeinfo>{common}"
                      f"<labels_on value=\"false\"/><color value=\"{stroke}\"/>")
            how = "h-e"
        case _:
            ring = [*points, points[0]] if body.kind == "polygon" else points
            links = "".join(f"<link point={quoteattr(f'{lat!r},{lon!r}')}/>" for lat, lon in ring)
            detail = f"{links}{shape_style}{common}<labels_on value=\"true\"/><color value=\"{stroke}\"/>"
            how = "h-e"
            # ATAK places a drawing's point in its middle.
            where = (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))
    try:
        return make_event(uid=uid, type=KINDS[body.kind], how=how, time=now_ms, start=now_ms,
                          stale=now_ms + body.stale_s * 1000, detail_xml=detail.encode(),
                          point=Point(where[0], where[1], UNKNOWN, UNKNOWN, UNKNOWN))
    except RemoteProtocolError as exc:
        raise ApiError(422, "invalid", f"cannot build the item: {exc.reason}") from exc


def _waypoint_name(route: str, index: int) -> str:
    return f"{route} SP" if index == 0 else f"CP{index}"


class ItemsApi:
    """``GET/POST /api/items`` and ``DELETE /api/items/{uid}``."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    def mine(self, identity: RequestIdentity) -> list[Track]:
        """Live map items the caller put in the picture (from the API or a TAK client), newest first.

        Anonymous callers draw nothing, so they have none.
        """
        if identity.principal is None:
            return []
        now = self._ctx.clock.now_ms()
        out = [track_of(uid, envelope, "item") for uid, envelope in list(self._ctx.presence.items.items())
               if envelope.origin.principal == identity.principal and not envelope.event.is_stale(now)]
        return sorted(out, key=lambda t: (-t.time_ms, t.uid))

    def put(self, identity: RequestIdentity, body: ItemRequest) -> ItemResult:
        """Build and send the item as the caller; 403 when ``uid`` is someone else's, 409 when it is a client."""
        principal = identity.principal
        assert principal is not None
        uid = body.uid or str(uuid.uuid4())
        presence = self._ctx.presence
        if uid in presence.sa:
            raise ApiError(409, "conflict", "that uid is a connected client's own position")
        held = presence.items.get(uid)
        if held is not None and not self._may_change(identity, held):
            raise ApiError(403, "forbidden", "that item was drawn by someone else")
        now = self._ctx.clock.now_ms()
        event = item_event(body, uid, principal, f"rallypoint-api-{principal}", now)
        origin = Origin(session_id=f"api:{principal}", groups=identity.write_groups, principal=principal)
        envelope = Envelope(event, origin, now)
        audience = self._accept(envelope)
        recipients = len(resolve(self._ctx.directory, envelope, audience))
        self._ctx.auditor.record(principal, "item.put", uid, {"via": "api", "type": event.type,
                                                               "replaced": str(held is not None).lower()})
        return ItemResult(uid=uid, type=event.type, kind=body.kind, name=body.name, recipients=recipients)

    def delete(self, identity: RequestIdentity, uid: str) -> ItemDeleted:
        """Send the delete of an item the caller drew (an admin: any item it reads) to all who got it."""
        held = self._ctx.presence.items.get(uid)
        if held is None or not identity.can_read(held.origin.groups):
            raise ApiError(404, "not_found", "no live map item with that uid")
        if not self._may_change(identity, held):
            raise ApiError(403, "forbidden", "that item was drawn by someone else")
        now = self._ctx.clock.now_ms()
        event = delete_event(uid, held.event.type, now_ms=now)
        # The delete must reach everyone who got the item, whatever groups the caller writes now.
        origin = Origin(session_id=f"api:{identity.principal}", groups=held.origin.groups,
                        principal=identity.principal)
        envelope = Envelope(event, origin, now)
        audience = self._accept(envelope)
        recipients = len(resolve(self._ctx.directory, envelope, audience))
        self._ctx.auditor.record(identity.principal or "-", "item.delete", uid, {"via": "api"})
        return ItemDeleted(uid=uid, deleted=True, recipients=recipients)

    @staticmethod
    def _may_change(identity: RequestIdentity, held: Envelope) -> bool:
        return held.origin.principal == identity.principal or (
            identity.role == "admin" and identity.can_read(held.origin.groups))

    def _accept(self, envelope: Envelope) -> Audience:
        try:
            return self._ctx.ingest.accept(envelope)
        except RemoteProtocolError as exc:
            self._ctx.metrics.rejected.labels("item_refused", "http").inc()
            log.warning("map item refused", extra={"uid": envelope.event.uid, "reason": exc.reason})
            raise ApiError(403, "forbidden", exc.reason) from exc

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth
        limit = self._ctx.settings.max_http_body_bytes

        async def list_items(request: Request) -> Response:
            check_only(request, frozenset())
            return json_response(self.mine(await auth.caller(request)))

        async def put_item(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.principal(request)
            try:
                body = await read_body(request, ItemRequest, limit)
                return json_response(self.put(identity, body), status=201)
            except ApiError as exc:
                if exc.status in (400, 422):
                    self._ctx.metrics.rejected.labels("item_invalid", "http").inc()
                    log.info("map item refused", extra={"principal": identity.principal, "detail": exc.detail})
                raise

        async def delete_item(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.principal(request)
            return json_response(self.delete(identity, request.path_params["uid"]))

        errors = {401: ("Not authenticated", ErrorBody), 403: ("Refused", ErrorBody)}
        return [
            Endpoint("GET", "/api/items", list_items, "Live map items the caller drew", "items",
                     {200: ("Items (with their drawing)", list[Track]), 400: ("Bad query", ErrorBody), **errors},
                     operation_id="listItems"),
            Endpoint("POST", "/api/items", put_item, "Draw (or replace) a map item as the caller", "items",
                     {201: ("Sent", ItemResult), 400: ("Malformed body", ErrorBody),
                      409: ("The uid is a client's position", ErrorBody), 413: ("Body too large", ErrorBody),
                      415: ("Not JSON", ErrorBody), 422: ("Invalid item", ErrorBody), **errors},
                     body=ItemRequest, operation_id="putItem"),
            Endpoint("DELETE", "/api/items/{uid}", delete_item, "Delete a map item the caller drew", "items",
                     {200: ("Delete sent", ItemDeleted), 400: ("Bad query", ErrorBody),
                      404: ("No such live item", ErrorBody), **errors},
                     params=(Param("uid", "path", {"type": "string"}, "item uid", required=True),),
                     operation_id="deleteItem"),
        ]
