"""``/api/video``: the video connections the caller reads, and adding or removing one (docs/video.md).

The same registry and rules as the Marti video API (``services.video``): connections are seen by
readers of the groups they were added in, URLs are shown whole only to whoever added them. HLS feeds
play through ``GET /api/video/{uid}/hls/{name}`` (``video_hls.py``).
"""

from __future__ import annotations

import logging
import uuid

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rallypoint.model.video import BadVideo, VideoConnection, VideoFeed, check_feed
from rallypoint.services.video import VideoDenied, VideoFull, VideoService
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Param, check_only, json_response, read_body
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.api.video_hls import HlsProxy
from rallypoint.web.context import RequestIdentity, WebContext

log = logging.getLogger(__name__)

_UID = Param("uid", "path", {"type": "string", "minLength": 1, "maxLength": 200}, "connection uid", required=True)
_ERRORS = {401: ("Not authenticated", ErrorBody), 503: ("No video registry on this node", ErrorBody)}


class VideoFeedBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One stream: rtsp, rtsps, srt, rtmp(s), udp, or http(s) to an HLS playlist (.m3u8)."""

    url: str
    uid: str | None = None
    alias: str | None = None
    active: bool = True
    latitude: float | None = None
    longitude: float | None = None


class VideoCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A connection to add or replace (``uid`` picked by the server when absent)."""

    alias: str
    feeds: list[VideoFeedBody]
    uid: str | None = None
    active: bool = True


class VideoView(msgspec.Struct, frozen=True):
    """A connection as the caller sees it: ``groups`` are those of its groups the caller reads."""

    uid: str
    alias: str
    active: bool
    feeds: list[VideoFeedBody]
    groups: list[str]
    owner: str | None
    updated_ms: int


def _view(c: VideoConnection, who: RequestIdentity) -> VideoView:
    feeds = [VideoFeedBody(url=f.url, uid=f.uid, alias=f.alias, active=f.active, latitude=f.latitude,
                           longitude=f.longitude) for f in c.feeds]
    return VideoView(uid=c.uid, alias=c.alias, active=c.active, feeds=feeds,
                     groups=sorted(c.groups & who.read_groups), owner=c.owner, updated_ms=c.updated_ms)


class VideoApi:
    """The video endpoints over the context's video service (503 when the node has none)."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    def _service(self) -> VideoService:
        if self._ctx.video is None:
            raise ApiError(503, "unavailable", "this node keeps no video registry")
        return self._ctx.video

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth
        limit = self._ctx.settings.max_http_body_bytes

        async def list_video(request: Request) -> Response:
            check_only(request, frozenset())
            who = await auth.caller(request)
            return json_response([_view(c, who) for c in await self._service().visible(who)])

        async def add_video(request: Request) -> Response:
            check_only(request, frozenset())
            who = await auth.principal(request)
            service = self._service()
            body = await read_body(request, VideoCreate, limit)
            uid = body.uid or str(uuid.uuid4())
            try:
                feeds = [check_feed(VideoFeed(uid=f.uid or (uid if len(body.feeds) == 1 else f"{uid}-{i}"),
                                              alias=f.alias or body.alias, url=f.url, active=f.active,
                                              latitude=f.latitude, longitude=f.longitude))
                         for i, f in enumerate(body.feeds)]
                stored = await service.put(who, uid, body.alias, feeds, active=body.active)
            except BadVideo as exc:
                self._ctx.metrics.rejected.labels("video_bad_request", "http").inc()
                raise ApiError(400, "invalid_video", str(exc)) from exc
            except VideoDenied as exc:
                raise ApiError(403, "forbidden", str(exc)) from exc
            except VideoFull as exc:
                raise ApiError(409, "too_many", str(exc)) from exc
            self._ctx.auditor.record(who.principal or "-", "video.put", uid)
            return json_response(_view(stored, who), status=201)

        async def delete_video(request: Request) -> Response:
            check_only(request, frozenset())
            who = await auth.principal(request)
            uid = request.path_params["uid"]
            try:
                removed = await self._service().delete(who, uid)
            except VideoDenied as exc:
                raise ApiError(403, "forbidden", str(exc)) from exc
            if not removed:
                raise ApiError(404, "not_found", "no such video connection")
            self._ctx.auditor.record(who.principal or "-", "video.delete", uid)
            return Response(status_code=204)

        return [
            Endpoint("GET", "/api/video", list_video, "Video connections the caller reads", "video",
                     {200: ("Connections", list[VideoView]), **_ERRORS}, operation_id="listVideo"),
            Endpoint("POST", "/api/video", add_video, "Add or replace a video connection in the caller's groups",
                     "video",
                     {201: ("Stored", VideoView), 400: ("Not a usable stream: the detail says why", ErrorBody),
                      403: ("The uid belongs to other groups", ErrorBody),
                      409: ("The registry is full", ErrorBody), **_ERRORS},
                     body=VideoCreate, operation_id="addVideo"),
            Endpoint("DELETE", "/api/video/{uid}", delete_video, "Remove a video connection", "video",
                     {204: ("Removed", None), 403: ("The connection belongs to other groups", ErrorBody),
                      404: ("No such connection the caller reads", ErrorBody), **_ERRORS},
                     params=(_UID,), operation_id="deleteVideo"),
            HlsProxy(self._ctx, auth, self._service).endpoint(),
        ]
