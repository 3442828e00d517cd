"""The Marti video API ATAK, WinTAK and iTAK call: ``/Marti/vcm`` (XML) and ``/Marti/api/video`` (JSON).

``GET /Marti/vcm`` lists feeds as ``<videoConnections><feed>...``; ``POST /Marti/vcm`` adds the
feeds of such a document, each as a connection of one feed. ``/Marti/api/video`` speaks TAK
Server's ``videoConnections`` JSON: ``GET`` lists, ``POST`` adds (``{"videoConnections": [...]}``),
``GET``/``PUT``/``DELETE /Marti/api/video/{uid}`` read, replace and remove one connection.
Lists hold only what the caller reads; an unreadable uid is answered like an absent one (404).
Rules live in ``services.video``; bad input is a 400 in our words, counted as ``video_bad_request``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from rallypoint.errors import LimitExceeded
from rallypoint.model.video import BadVideo, VideoConnection, VideoFeed, check_feed
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.services.video import VideoDenied, VideoFull, VideoService
from rallypoint.services.video_xml import MAX_VCM_BYTES, parse_vcm, render_vcm
from rallypoint.validation_errors import InvalidJson, decode_json
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.enrollment_auth import read_limited_body
from rallypoint.web.features import Feature

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class FeedIn(msgspec.Struct, frozen=True):
    """One feed of a posted connection (TAK Server ``Feed``; other fields are accepted and ignored)."""

    url: str
    alias: str | None = None
    uuid: str | None = None
    active: bool = True
    latitude: float | str | None = None
    longitude: float | str | None = None


class ConnectionIn(msgspec.Struct, frozen=True):
    """One posted connection (TAK Server ``VideoConnection``)."""

    feeds: list[FeedIn]
    alias: str | None = None
    uuid: str | None = None
    active: bool = True


class ConnectionsIn(msgspec.Struct, frozen=True):
    """The body of ``POST /Marti/api/video``."""

    videoConnections: list[ConnectionIn]  # TAK's field name


def feeds_of(body: ConnectionIn, uid: str) -> tuple[str, list[VideoFeed]]:
    """The alias and checked feeds of a posted connection whose uid is ``uid``."""
    feeds = []
    for i, f in enumerate(body.feeds):
        feed_uid = f.uuid or (uid if len(body.feeds) == 1 else f"{uid}-{i}")
        feeds.append(check_feed(VideoFeed(uid=feed_uid, alias=f.alias or body.alias or feed_uid, url=f.url,
                                          active=f.active, latitude=_float(f.latitude),
                                          longitude=_float(f.longitude))))
    return body.alias or (feeds[0].alias if feeds else uid), feeds


def connection_json(c: VideoConnection) -> dict[str, object]:
    """A connection in TAK Server's JSON shape (positions as strings, as TAK Server writes them)."""
    return {
        "uuid": c.uid, "active": c.active, "alias": c.alias, "thumbnail": None, "classification": None,
        "feeds": [
            {"uuid": f.uid, "active": f.active, "alias": f.alias, "url": f.url, "order": None, "macAddress": "",
             "roverPort": "-1", "ignoreEmbeddedKLV": "false", "source": None, "networkTimeout": "12000",
             "bufferTime": "-1", "rtspReliable": "0", "thumbnail": None, "classification": None,
             "latitude": None if f.latitude is None else repr(f.latitude),
             "longitude": None if f.longitude is None else repr(f.longitude),
             "fov": None, "heading": None, "range": None}
            for f in c.feeds
        ],
    }


def _float(value: float | str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise BadVideo(f"position {value!r} is not a number") from None


class VideoFeature:
    """Routes of the Marti video API over a :class:`VideoService`; runs and closes the service."""

    def __init__(self, ctx: WebContext, service: VideoService) -> None:
        self._ctx = ctx
        self._service = service
        # The Marti body limit (max_http_body_bytes), never above what the XML reader accepts.
        self._limit = min(ctx.settings.max_http_body_bytes, MAX_VCM_BYTES)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/Marti/vcm", self.vcm_get, methods=["GET"]),
            Route("/Marti/vcm", self.vcm_post, methods=["POST"]),
            Route("/Marti/api/video", self.list_json, methods=["GET"]),
            Route("/Marti/api/video", self.post_json, methods=["POST"]),
            Route("/Marti/api/video/{uid}", self.get_one, methods=["GET"]),
            Route("/Marti/api/video/{uid}", self.put_one, methods=["PUT"]),
            Route("/Marti/api/video/{uid}", self.delete_one, methods=["DELETE"]),
        ]

    # Nothing to observe: the ingest path does not call observe (every event would pay for the call).
    observes = False

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        return None  # the service is an ingest hook of its own (node.build)

    async def run(self) -> None:
        await self._service.run()

    async def close(self) -> None:
        await self._service.close()

    # --- endpoints ----------------------------------------------------------------------------
    async def vcm_get(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        return Response(render_vcm(await self._service.visible(who)), media_type="application/xml")

    async def vcm_post(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        try:
            feeds = parse_vcm(await read_limited_body(request, self._limit))
            for feed in feeds:
                await self._service.put(who, feed.uid, feed.alias, [feed], active=feed.active)
                self._audit(who, feed.uid)
        except (BadVideo, LimitExceeded, VideoDenied, VideoFull) as exc:
            return self._refused(who, exc)
        return PlainTextResponse("")

    async def list_json(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        return JSONResponse({"videoConnections": [connection_json(c) for c in await self._service.visible(who)]})

    async def post_json(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        stored = []
        try:
            body = _decode(await read_limited_body(request, self._limit), ConnectionsIn)
            prepared = []
            for item in body.videoConnections:
                uid = item.uuid or str(uuid.uuid4())
                prepared.append((uid, *feeds_of(item, uid), item.active))
            # Every connection is checked before any is stored: a bad one refuses the whole body.
            for uid, alias, feeds, active in prepared:
                stored.append(await self._service.put(who, uid, alias, feeds, active=active))
                self._audit(who, uid)
        except (BadVideo, LimitExceeded, VideoDenied, VideoFull) as exc:
            return self._refused(who, exc)
        return JSONResponse({"videoConnections": [connection_json(c) for c in stored]})

    async def get_one(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        found = await self._service.get(who, request.path_params["uid"])
        if found is None:
            return _not_found()
        return JSONResponse(connection_json(found))

    async def put_one(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        uid = request.path_params["uid"]
        try:
            body = _decode(await read_limited_body(request, self._limit), ConnectionIn)
            alias, feeds = feeds_of(body, uid)
            stored = await self._service.put(who, uid, alias, feeds, active=body.active)
            self._audit(who, uid)
        except (BadVideo, LimitExceeded, VideoDenied, VideoFull) as exc:
            return self._refused(who, exc)
        return JSONResponse(connection_json(stored))

    async def delete_one(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        uid = request.path_params["uid"]
        try:
            removed = await self._service.delete(who, uid)
        except VideoDenied as exc:
            return self._refused(who, exc)
        if not removed:
            return _not_found()
        self._ctx.auditor.record(who.principal or "-", "video.delete", uid)
        return PlainTextResponse("")

    def _audit(self, who: RequestIdentity, uid: str) -> None:
        self._ctx.auditor.record(who.principal or "-", "video.put", uid)

    def _refused(self, who: RequestIdentity, exc: Exception) -> Response:
        match exc:
            case VideoDenied():
                status, reason = 403, "video_denied"
            case VideoFull():
                status, reason = 409, "video_full"
            case LimitExceeded():
                status, reason, exc = 413, "video_too_large", BadVideo(f"body larger than {self._limit} bytes")
            case _:
                status, reason = 400, "video_bad_request"
        self._ctx.metrics.rejected.labels(reason, "http").inc()
        log.info("video request refused", extra={"principal": who.principal, "reason": str(exc)})
        return PlainTextResponse(f"video connection refused: {exc}", status_code=status)


def _decode(raw: bytes, target: type[_T]) -> _T:
    try:
        return decode_json(raw, target)
    except InvalidJson as exc:
        raise BadVideo(exc.detail) from None


def _forbidden() -> Response:
    return PlainTextResponse("forbidden", status_code=403)


def _not_found() -> Response:
    return PlainTextResponse("no such video connection", status_code=404)


def build(ctx: WebContext) -> Feature:
    """The Marti video feature over the context's video service."""
    if ctx.video is None:
        raise ValueError("the video feature needs WebContext.video")
    return VideoFeature(ctx, ctx.video)
