"""Headers and CSRF protection for every HTTP response and write of the web app.

Every response carries a strict Content-Security-Policy (scripts, styles, workers and connections from
this origin only, no inline script, no eval, never framed; images and connections also from the
configured tile URL's origin, if any), ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer``; a route that sets its own policy keeps it, and the generated API
index (``/api/docs``, no script) may use its inline style sheet.

CSRF: the picture's session is a cookie, so a write that rides on it must not come from another site.
A request with an unsafe method (anything but GET, HEAD, OPTIONS) that presents the ``access_token``
cookie without an ``Authorization`` header, and every ``/api/web/`` write, is refused with 403
``cross_origin`` (counted and logged) when a browser says it comes from elsewhere: an ``Origin`` other
than the request's own scheme and host (``null`` included), or, without ``Origin``, a
``Sec-Fetch-Site`` other than ``same-origin`` or ``none``. Browsers send those headers on every such
request and a page cannot forge them; TAK tools that send the cookie from a program (node-tak,
CloudTAK's server) send neither and are served as before. ``SameSite=Strict`` keeps the cookie off
cross-site requests in the first place. A WebSocket opened with the cookie from another origin is
refused the same way (cross-site WebSocket hijacking). Requests with a Bearer header or a client
certificate carry no ambient credential and are not checked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rallypoint.web.credentials import ACCESS_TOKEN_COOKIE

log = logging.getLogger(__name__)

# media-src: video plays from this origin only (HLS through /api/video/{uid}/hls/, docs/video.md); blob: is
# the MediaSource that hls.js hands the <video> element.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self'; font-src 'self'; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_OTHER_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_HEADERS = [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode()), *_OTHER_HEADERS]
# The API index (/api/docs) is one generated page with an inline style sheet and no script at all.
_INLINE_STYLE_PATHS = frozenset({"/api/docs"})


def content_security_policy(tile_origin: str | None = None) -> str:
    """The policy, with the origin of the configured tile URL (``config.tile_origin``) allowed for images
    and connections only (the map fetches tiles), when there is one."""
    if tile_origin is None:
        return CONTENT_SECURITY_POLICY
    return (CONTENT_SECURITY_POLICY.replace("img-src 'self' data: blob:", f"img-src 'self' data: blob: {tile_origin}")
            .replace("connect-src 'self'", f"connect-src 'self' {tile_origin}"))


def _headers(policy: str) -> list[tuple[bytes, bytes]]:
    return [(b"content-security-policy", policy.encode()), *_OTHER_HEADERS]
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WEB_SESSION_PREFIX = "/api/web/"


def cross_origin(scope: Scope) -> bool:
    """Whether a browser says the request comes from another origin than this one (scheme, host, port)."""
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    if origin is None:
        return headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    return origin != f"{scheme}://{headers.get('host', '')}"


def _rides_on_cookie(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    if "authorization" in headers:
        return False
    return any(part.strip().startswith(ACCESS_TOKEN_COOKIE + "=")
               for part in headers.get("cookie", "").split(";"))


class PageGuard:
    """ASGI middleware: security headers on every response, the origin check on cookie writes."""

    def __init__(self, app: ASGIApp, on_refuse: Callable[[], None] | None = None,
                 tile_origin: str | None = None) -> None:
        self.app = app
        self.on_refuse = on_refuse
        policy = content_security_policy(tile_origin)
        self._headers = _headers(policy)
        self._headers_inline_style = _headers(policy.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" and _rides_on_cookie(scope) and cross_origin(scope):
            self._refused(scope)
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 4403})
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if method not in _SAFE_METHODS and cross_origin(scope) and (
            _rides_on_cookie(scope) or scope.get("path", "").startswith(WEB_SESSION_PREFIX)
        ):
            self._refused(scope)
            await _forbidden(send)
            return

        headers = self._headers_inline_style if scope.get("path") in _INLINE_STYLE_PATHS else self._headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in headers if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refused(self, scope: Scope) -> None:
        headers = Headers(scope=scope)
        log.warning("cross-origin request refused", extra={
            "path": scope.get("path", ""), "origin": headers.get("origin", "")[:200],
            "remote": (scope.get("client") or ("", 0))[0]})
        if self.on_refuse is not None:
            self.on_refuse()


async def _forbidden(send: Send) -> None:
    body = json.dumps({"error": "cross_origin",
                       "detail": "a write with the session cookie must come from this server's own pages"}).encode()
    await send({"type": "http.response.start", "status": 403, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *_HEADERS]})
    await send({"type": "http.response.body", "body": body})
