"""The web picture: the page at ``/`` (and ``/map``), its files under ``/web/``, and its cookie session.

Login posts the form to the token service (the same password grant and answers as ``POST /oauth/token``,
audited and rate-limited the same way) and turns the token into an ``access_token`` cookie: HttpOnly,
SameSite=Strict, Secure on HTTPS. Every route of the server already takes that cookie as it takes a
Bearer token, so the live feed and the API see the caller's own groups. Writes that ride on the cookie
are checked for their origin by :mod:`rallypoint.web.guard`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.web.context import WebContext
from rallypoint.web.credentials import ACCESS_TOKEN_COOKIE, presented_token
from rallypoint.web.features import Feature
from rallypoint.web.oauth import OAuthTokens
from rallypoint.web.tiles import LocalTiles

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# What /web/ serves, by suffix: nothing else under static/ leaves the server.
_MEDIA = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".geojson": "application/geo+json", ".json": "application/json",
    ".txt": "text/plain; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml",
}
_NO_STORE = {"Cache-Control": "no-store"}


class WebPicture:
    """Routes of the picture page and its session; no background work."""

    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx
        self._oauth = OAuthTokens(users=ctx.users, tokens=ctx.tokens, auditor=ctx.auditor, clock=ctx.clock,
                                  metrics=ctx.metrics)
        self._tiles = LocalTiles(ctx.settings.data_path, tile_url=ctx.settings.web.tile_url)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/", self.page, methods=["GET"]),
            Route("/map", self.old_address, methods=["GET"]),
            Route("/web/{path:path}", self.asset, methods=["GET"]),
            Route("/api/web/login", self.login, methods=["POST"]),
            Route("/api/web/renew", self.renew, methods=["POST"]),
            Route("/api/web/logout", self.logout, methods=["POST"]),
            Route("/api/web/session", self.session, methods=["GET"]),
            *self._tiles.routes,
        ]

    # Nothing to observe: the ingest path does not call observe (every event would pay for the call).
    observes = False

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        return None

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def page(self, request: Request) -> Response:
        """The picture."""
        return FileResponse(STATIC_DIR / "index.html", media_type=_MEDIA[".html"], headers=_NO_STORE)

    async def old_address(self, request: Request) -> Response:
        """``/map`` is the picture's former address: the same query, at ``/``."""
        query = request.url.query
        return RedirectResponse("/" + (f"?{query}" if query else ""), status_code=308)

    async def asset(self, request: Request) -> Response:
        """A file of the page (the app's modules, its style sheet, the vendored libraries and base map)."""
        relative = request.path_params["path"]
        target = (STATIC_DIR / relative).resolve()
        media = _MEDIA.get(target.suffix)
        if media is None or not target.is_relative_to(STATIC_DIR.resolve()) or not target.is_file():
            return JSONResponse({"error": "not_found", "detail": "no such file of the web page"}, status_code=404)
        return FileResponse(target, media_type=media)

    async def login(self, request: Request) -> Response:
        """The password grant of the token service; the token goes into the session cookie, not the body."""
        answer = await self._oauth.token(request)
        body = json.loads(bytes(answer.body))
        if answer.status_code != 200:
            return JSONResponse({k: v for k, v in body.items() if k != "access_token"},
                                status_code=answer.status_code, headers=_NO_STORE)
        claims = await self._ctx.tokens.check(body["access_token"])
        principal = claims.principal if claims is not None else ""
        return self._with_cookie(request, body["access_token"], body["expires_in"], principal)

    async def renew(self, request: Request) -> Response:
        """A fresh token in the same session for the cookie's live token (401 when it is not live)."""
        token = request.cookies.get(ACCESS_TOKEN_COOKIE, "")
        issued = await self._ctx.tokens.renew(token) if token else None
        if issued is None:
            return self._cleared(JSONResponse({"error": "invalid_token", "detail": "log in again"},
                                              status_code=401, headers=_NO_STORE))
        self._ctx.auditor.record(issued.principal, "token.renew", issued.principal, {"via": "web"})
        return self._with_cookie(request, issued.token, issued.expires_in_s, issued.principal)

    async def logout(self, request: Request) -> Response:
        """Revoke the cookie's token (and its session) and clear the cookie."""
        token = request.cookies.get(ACCESS_TOKEN_COOKIE, "")
        principal = await self._ctx.tokens.revoke(token) if token else None
        if principal is not None:
            self._ctx.auditor.record(principal, "token.revoke", principal, {"via": "web"})
        return self._cleared(JSONResponse({"logged_out": principal is not None}, headers=_NO_STORE))

    async def session(self, request: Request) -> Response:
        """Who the page is and its role: by cookie (with its remaining lifetime), client certificate, or anonymous."""
        identity = await self._ctx.identify(request)
        if identity is None:
            return JSONResponse({"error": "invalid_token", "detail": "log in again"}, status_code=401,
                                headers=_NO_STORE)
        token = presented_token(request)
        claims = await self._ctx.tokens.check(token) if token else None
        # The role lets the page offer only the actions the caller has (the routes still decide).
        body: dict[str, object] = {"principal": identity.principal, "role": identity.role,
                                   "cookie": claims is not None}
        if claims is not None:
            body["expires_in"] = max(1, (claims.expires_ms - self._ctx.clock.now_ms()) // 1000)
        return JSONResponse(body, headers=_NO_STORE)

    def _with_cookie(self, request: Request, token: str, expires_in: int, principal: str) -> Response:
        response = JSONResponse({"principal": principal, "expires_in": expires_in}, headers=_NO_STORE)
        response.set_cookie(ACCESS_TOKEN_COOKIE, token, max_age=expires_in, path="/", httponly=True,
                            secure=request.url.scheme == "https", samesite="strict")
        return response

    def _cleared(self, response: Response) -> Response:
        response.delete_cookie(ACCESS_TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
        return response


def build(ctx: WebContext) -> Feature:
    """Construct the picture feature."""
    return WebPicture(ctx)
