"""Who is calling the native API: client certificates, bearer tokens, and the token endpoints.

``POST /api/auth/token`` answers a refused password with ``WWW-Authenticate: Basic`` (scripts and
curl expect the challenge) unless the request carries ``X-Requested-With`` (any value), as the map
page's requests do: a browser shown a Basic challenge pops its own dialog over the page. The page
itself logs in with ``POST /oauth/token``, which never challenges with Basic.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.errors import AuthError
from rallypoint.security.tokens import TokenService
from rallypoint.web.api.common import ApiError, Endpoint, json_response
from rallypoint.web.api.schemas import ErrorBody, TokenResponse
from rallypoint.web.context import RequestIdentity, TokenIdentities, WebContext
from rallypoint.web.credentials import bearer_token, presented_token
from rallypoint.web.enrollment_auth import REALM, basic_credentials

log = logging.getLogger(__name__)

_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="Rallypoint", error="invalid_token"'}
_NEEDS_LOGIN = {"WWW-Authenticate": f'Bearer realm="{REALM}"'}


__all__ = ["ApiAuth", "bearer_token", "presented_token"]


class ApiAuth:
    """Resolves callers and enforces the API's rules on them.

    Anonymous callers (plain HTTP on loopback, no credentials) read as ``__ANON__``; anything that
    writes, and every administrative call, needs a principal.
    """

    def __init__(self, ctx: WebContext, tokens: TokenService) -> None:
        self._ctx = ctx
        self.tokens = tokens
        self._identities = TokenIdentities(tokens, ctx.users, ctx.accounts)

    async def identity_for(self, principal: str) -> RequestIdentity | None:
        """Current groups and role of ``principal`` from the user store (None: disabled account)."""
        return await self._identities.identity_for(principal)

    async def caller(self, request: Request) -> RequestIdentity:
        """The caller; 403 for a revoked certificate, 401 for a bearer token that is not live."""
        identity = await self._ctx.identify(request)
        has_cert = self._ctx.peers.certificate_for(request.scope) is not None
        if identity is None and presented_token(request) is not None and not has_cert:
            raise ApiError(401, "invalid_token", "the token is unknown, expired or revoked", _INVALID_TOKEN)
        if identity is None:
            raise ApiError(403, "forbidden", "certificate revoked or account disabled")
        if identity.principal is None and presented_token(request) is not None:
            raise ApiError(401, "invalid_token", "the token is unknown, expired or revoked", _INVALID_TOKEN)
        return identity

    async def principal(self, request: Request) -> RequestIdentity:
        """The caller, who must be authenticated (401 otherwise)."""
        identity = await self.caller(request)
        if identity.principal is None:
            raise ApiError(401, "unauthenticated", "log in first (POST /api/auth/token)", _NEEDS_LOGIN)
        return identity

    async def with_role(self, request: Request, *roles: str) -> RequestIdentity:
        """An authenticated caller holding one of ``roles`` (403 otherwise)."""
        identity = await self.principal(request)
        if identity.role not in roles:
            raise ApiError(403, "forbidden", f"requires role {' or '.join(roles)}")
        return identity

    def endpoints(self) -> list[Endpoint]:
        """``POST`` and ``DELETE /api/auth/token``, ``POST /api/auth/token/renew``."""
        ctx = self._ctx
        tokens = self.tokens

        async def issue(request: Request) -> Response:
            remote = request.client.host if request.client else ""
            principal: str
            via: str
            quiet = "x-requested-with" in request.headers
            if request.headers.get("authorization", "").lower().startswith("basic"):
                try:
                    name, password = basic_credentials(request)
                except AuthError as exc:
                    raise _basic_refusal("malformed Basic credentials", quiet) from exc
                shown = name[:64]
                try:
                    user = await ctx.users.authenticate(name, password, now_ms=ctx.clock.now_ms())
                except AuthError as exc:
                    reason = getattr(exc, "reason", "rejected")
                    log.warning("api login refused", extra={"user": shown, "reason": reason, "remote": remote})
                    ctx.auditor.record(shown, "login.failed", shown, {"via": "api", "reason": reason, "remote": remote})
                    raise _basic_refusal("wrong name or password", quiet) from exc
                ctx.auditor.record(user.name, "login.ok", user.name, {"via": "api", "remote": remote})
                principal, via = user.name, "password"
            else:
                if ctx.peers.certificate_for(request.scope) is None:
                    raise _basic_refusal("send HTTP Basic credentials or a client certificate", quiet)
                identity = await ctx.identify(request)
                if identity is None or identity.principal is None:
                    raise ApiError(403, "forbidden", "certificate revoked or account disabled")
                principal, via = identity.principal, "certificate"
            issued = await tokens.issue(principal)
            ctx.auditor.record(
                principal, "token.issue", principal,
                {"via": via, "expires_ms": str(issued.expires_ms), "remote": remote},
            )
            body = TokenResponse(access_token=issued.token, token_type="bearer", expires_in=issued.expires_in_s)
            return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

        async def renew(request: Request) -> Response:
            token = presented_token(request)
            if not token:
                raise ApiError(401, "unauthenticated", "present the token to renew as a Bearer token", _NEEDS_LOGIN)
            issued = await tokens.renew(token)
            # The account must still be allowed in: a disabled account's live token renews nothing.
            if issued is None or await self.identity_for(issued.principal) is None:
                if issued is not None:
                    await tokens.revoke(issued.token)
                raise ApiError(401, "invalid_token", "the token is unknown, expired or revoked", _INVALID_TOKEN)
            remote = request.client.host if request.client else ""
            ctx.auditor.record(
                issued.principal, "token.renew", issued.principal,
                {"expires_ms": str(issued.expires_ms), "remote": remote},
            )
            body = TokenResponse(access_token=issued.token, token_type="bearer", expires_in=issued.expires_in_s)
            return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

        async def revoke(request: Request) -> Response:
            token = presented_token(request)
            if not token:
                raise ApiError(401, "unauthenticated", "present the token to revoke as a Bearer token", _NEEDS_LOGIN)
            principal = await tokens.revoke(token)
            if principal is None:
                raise ApiError(401, "invalid_token", "the token is unknown, expired or revoked", _INVALID_TOKEN)
            ctx.auditor.record(principal, "token.revoke", principal, {"scope": "self"})
            return Response(status_code=204)

        unauthorized = (401, ("Bad or missing credentials", ErrorBody))
        return [
            Endpoint(
                "POST", "/api/auth/token", issue, "Exchange HTTP Basic credentials or a client certificate for a token",
                "auth", {200: ("Bearer token", TokenResponse), unauthorized[0]: unauthorized[1],
                         403: ("Refused", ErrorBody)},
                security=("basic", "mutualTLS"), operation_id="issueToken",
            ),
            Endpoint(
                "POST", "/api/auth/token/renew", renew,
                "Exchange a live token for a fresh one in the same session (before it expires)", "auth",
                {200: ("Bearer token", TokenResponse), unauthorized[0]: unauthorized[1]},
                security=("bearer",), operation_id="renewToken",
            ),
            Endpoint(
                "DELETE", "/api/auth/token", revoke,
                "Revoke the presented bearer token and every token renewed in its session", "auth",
                {204: ("Revoked", None), unauthorized[0]: unauthorized[1]},
                security=("bearer",), operation_id="revokeToken",
            ),
        ]


def _basic_refusal(detail: str, quiet: bool) -> ApiError:
    """401 for a password login; ``quiet`` (a page's request) challenges with Bearer, not Basic."""
    scheme = "Bearer" if quiet else "Basic"
    return ApiError(401, "unauthenticated", detail, {"WWW-Authenticate": f'{scheme} realm="{REALM}"'})
