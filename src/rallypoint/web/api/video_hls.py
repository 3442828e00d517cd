"""``GET /api/video/{uid}/hls/{name}``: an HLS feed played through this server (docs/video.md).

The picture plays HLS feeds from its own origin, so its Content-Security-Policy stays ``'self'`` and a
registered URL never reaches the browser with its credentials. ``uid`` is a feed the caller reads (the
same group rules as ``GET /api/video``); ``name`` is one file of the feed's directory: the feed's own
playlist (fetched with its stored URL, query and credentials), or a playlist, segment or init section
next to it. Only HLS is relayed: a playlist must start with ``#EXTM3U`` and stay under 1 MiB; a segment
must have an HLS media extension, a media content type and the first bytes of its format (MPEG-TS sync
byte, an MP4 box, an ADTS or ID3 header, ``WEBVTT``), and stay under 32 MiB. Playlists are rewritten so
that URIs of the same directory become bare names (fetched through here again); other URIs are left as
they are and the page's policy keeps the browser from fetching them. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response

from rallypoint.services.video import VideoService
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Media, Param
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.context import WebContext

log = logging.getLogger(__name__)

PLAYLIST_BYTES = 1 << 20
SEGMENT_BYTES = 32 << 20
FETCH_TIMEOUT_S = 10.0
MAX_FETCHES = 16  # upstream requests in flight per node; more wait their turn
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_QUERY = 1024
_MP4_BOXES = frozenset({b"ftyp", b"styp", b"moof", b"moov", b"sidx", b"emsg", b"prft", b"free"})
# What a segment may be, by extension: the type we answer with and how its first bytes look.
_SEGMENTS: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    ".ts": ("video/mp2t", lambda b: b[:1] == b"\x47"),
    ".m4s": ("video/iso.segment", lambda b: b[4:8] in _MP4_BOXES),
    ".mp4": ("video/mp4", lambda b: b[4:8] in _MP4_BOXES),
    ".m4v": ("video/mp4", lambda b: b[4:8] in _MP4_BOXES),
    ".m4a": ("audio/mp4", lambda b: b[4:8] in _MP4_BOXES),
    ".aac": ("audio/aac", lambda b: b[:3] == b"ID3" or (b[:1] == b"\xff" and b[1:2] >= b"\xf0")),
    ".vtt": ("text/vtt", lambda b: b.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT")),
}
# Content types a media server may give segments; anything else (HTML, JSON, text) is refused.
_MEDIA_TYPES = ("video/", "audio/", "application/octet-stream", "binary/octet-stream", "application/mp4",
                "text/vtt")
_URI_ATTR = re.compile(r'URI="([^"]*)"')


class HlsRefused(Exception):
    """What came back is not HLS, or is too large: the reason, in words fit for the caller."""


def _uid_param() -> Param:
    return Param("uid", "path", {"type": "string", "minLength": 1, "maxLength": 200}, "feed uid", required=True)


def _name_param() -> Param:
    return Param("name", "path", {"type": "string", "pattern": NAME_RE.pattern}, "a file of the feed's directory",
                 required=True)


class HlsProxy:
    """The relay: one bounded set of upstream requests per node, group rules from the video service."""

    def __init__(self, ctx: WebContext, auth: ApiAuth, service: Callable[[], VideoService]) -> None:
        self._ctx = ctx
        self._auth = auth
        self._service = service
        self._fetches = asyncio.Semaphore(MAX_FETCHES)

    def endpoint(self) -> Endpoint:
        """The route of this module."""
        return Endpoint(
            "GET", "/api/video/{uid}/hls/{name}", self.play, "An HLS feed's playlist or segment, through this server",
            "video",
            {200: ("The playlist (rewritten) or the segment", Media({
                PLAYLIST_TYPE: {"type": "string"}, "video/mp2t": {"type": "string", "format": "binary"},
                "video/mp4": {"type": "string", "format": "binary"}})),
             400: ("Not a file name of an HLS feed", ErrorBody),
             401: ("Not authenticated", ErrorBody), 404: ("No such feed the caller reads", ErrorBody),
             409: ("The feed is not an HLS playlist", ErrorBody),
             502: ("The stream's server failed or answered something that is not HLS", ErrorBody),
             503: ("No video registry on this node", ErrorBody),
             504: ("The stream's server did not answer in time", ErrorBody)},
            params=(_uid_param(), _name_param()), operation_id="playVideoHls")

    async def play(self, request: Request) -> Response:
        """Relay one file of the feed's directory (see the module docstring)."""
        who = await self._auth.caller(request)
        uid, name = request.path_params["uid"], request.path_params["name"]
        if not NAME_RE.match(name) or name.endswith("."):
            raise ApiError(400, "bad_name", "a file name of the feed's directory: letters, digits, '.', '_', '-'")
        stored = await self._service().stream_url(who, uid)
        if stored is None:
            raise ApiError(404, "not_found", "no such video feed")
        feed = urlsplit(stored)
        if feed.scheme not in ("http", "https") or not feed.path.endswith(".m3u8"):
            raise ApiError(409, "not_hls", "this feed is not an HLS playlist (http or https, .m3u8)")
        directory, _, own_name = feed.path.rpartition("/")
        query = request.url.query
        if len(query) > _MAX_QUERY or any(ord(c) < 0x21 for c in query):
            raise ApiError(400, "bad_parameter", "query string too long or not printable")
        host = feed.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        netloc += f":{feed.port}" if feed.port else ""
        if name == own_name and not query:
            target = urlunsplit((feed.scheme, netloc, feed.path, feed.query, ""))
        else:
            target = urlunsplit((feed.scheme, netloc, f"{directory}/{name}", query, ""))
        auth = httpx.BasicAuth(feed.username or "", feed.password or "") if feed.username else None
        limit = PLAYLIST_BYTES if name.endswith(".m3u8") else SEGMENT_BYTES
        status, ctype, body = await self._fetch(target, auth, limit)
        try:
            if status != 200:
                raise HlsRefused(f"the stream's server answered {status}")
            if name.endswith(".m3u8"):
                answer = Response(rewrite_playlist(body, target, netloc, directory), media_type=PLAYLIST_TYPE)
            else:
                answer = Response(body, media_type=segment_type(name, ctype, body))
        except HlsRefused as exc:
            self._ctx.metrics.rejected.labels("video_hls_refused", "http").inc()
            log.info("video hls refused", extra={"uid": uid, "file": name, "reason": str(exc)})
            raise ApiError(502, "not_hls", str(exc)) from None
        answer.headers["Cache-Control"] = "no-store"
        return answer

    async def _fetch(self, url: str, auth: httpx.Auth | None, limit: int) -> tuple[int, str, bytes]:
        """GET ``url`` (no redirects, no proxy from the environment): status, content type, at most ``limit`` bytes."""
        async with self._fetches:
            try:
                client = httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False, trust_env=False)
                async with client, client.stream("GET", url, auth=auth) as upstream:
                    chunks: list[bytes] = []
                    size = 0
                    if upstream.status_code == 200:
                        async for chunk in upstream.aiter_bytes():
                            size += len(chunk)
                            if size > limit:
                                self._ctx.metrics.rejected.labels("video_hls_refused", "http").inc()
                                raise ApiError(502, "too_large", f"more than {limit} bytes: not relayed")
                            chunks.append(chunk)
                    return upstream.status_code, upstream.headers.get("content-type", ""), b"".join(chunks)
            except httpx.TimeoutException:
                raise ApiError(504, "upstream_timeout", "the stream's server did not answer in time") from None
            except (httpx.HTTPError, OSError) as exc:
                raise ApiError(502, "upstream_unreachable", f"cannot reach the stream's server: {type(exc).__name__}") \
                    from None


def segment_type(name: str, upstream_type: str, body: bytes) -> str:
    """The content type to answer a segment with; ``HlsRefused`` unless it is the media its name says."""
    extension = name[name.rfind("."):].lower() if "." in name else ""
    known = _SEGMENTS.get(extension)
    if known is None:
        raise HlsRefused(f"{extension or 'no extension'}: not an HLS media file")
    media_type, looks_right = known
    given = upstream_type.split(";")[0].strip().lower()
    if given and not given.startswith(_MEDIA_TYPES) and given not in ("application/vnd.apple.mpegurl",):
        raise HlsRefused(f"the stream's server sent {given[:60]}, not media")
    if not looks_right(body):
        raise HlsRefused(f"the content is not {media_type}")
    return media_type


def rewrite_playlist(body: bytes, url: str, netloc: str, directory: str) -> bytes:
    """The playlist with URIs of its own directory (relative or absolute) as bare names; ``HlsRefused``
    unless it is an HLS playlist (UTF-8, starting with ``#EXTM3U``)."""
    try:
        text = body.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        raise HlsRefused("the playlist is not UTF-8 text") from None
    if not text.lstrip().startswith("#EXTM3U"):
        raise HlsRefused("not an HLS playlist (no #EXTM3U)")
    base = urlsplit(url)

    def local(uri: str) -> str:
        target = urlsplit(urljoin(url, uri))
        folder, _, file = target.path.rpartition("/")
        if (target.scheme, target.netloc.rpartition("@")[2]) != (base.scheme, netloc) or folder != directory:
            return uri  # elsewhere: left as is (the page may not fetch it)
        if not NAME_RE.match(file):
            return uri
        return file + (f"?{target.query}" if target.query else "")

    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            lines.append(_URI_ATTR.sub(lambda m: f'URI="{local(m.group(1))}"', line))
        elif stripped:
            lines.append(local(stripped))
        else:
            lines.append(line)
    return ("\n".join(lines) + "\n").encode()
