"""``POST /oauth/token``: TAK Server's OAuth password grant, as CloudTAK, node-tak and the map page call it.

The request names ``grant_type=password``, ``username`` and ``password`` in a form-encoded body
(``application/x-www-form-urlencoded``) or in the query string (node-tak sends them there with no
body); the body wins where both name a field. Any client credentials sent with HTTP Basic are
ignored: TAK Server's own client id is public.

Answers (always JSON, ``application/json;charset=UTF-8``, ``Cache-Control: no-store``):

* 200 ``{"access_token": JWT, "token_type": "bearer", "expires_in": seconds, "scope": "read write"}``.
  The token is accepted as ``Authorization: Bearer`` and as the ``access_token`` cookie on the
  Marti, native and enrollment routes (see :mod:`rallypoint.security.tokens`).
* 401 ``{"error": "invalid_grant", "error_description": ..., "reason": ...}`` for a wrong name or
  password (``Bad credentials``, reason ``bad_credentials``), a locked account (``User account is
  locked``, reason ``locked``) or a disabled one (``User is disabled``, reason ``disabled``, only
  told to whoever knows the password). The challenge is ``Bearer``, never ``Basic``: a browser
  must not pop its own login dialog over the page that asked.
* 400 ``invalid_request`` (missing or oversized fields, unreadable body) and
  ``unsupported_grant_type``.

Every attempt goes through the user store (argon2, lockout after repeated failures), is logged and
audited (``login.ok``/``login.failed`` with ``via=oauth``, then ``token.issue``); refusals are counted
in ``rallypoint_events_rejected_total{reason="oauth_..."}``.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rallypoint.clock import Clock
from rallypoint.errors import AuthError, LimitExceeded
from rallypoint.security.tokens import TokenService
from rallypoint.security.users import User, UserAccounts
from rallypoint.services.auditing import AuditRecorder
from rallypoint.services.metrics import ServerMetrics
from rallypoint.web.credentials import presented_token
from rallypoint.web.enrollment_auth import MAX_CREDENTIAL_CHARS, REALM, read_limited_body

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/token"
MEDIA_TYPE = "application/json;charset=UTF-8"
MAX_FORM_BYTES = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CHALLENGE = {"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_grant"'}
# What a client is told per refusal reason of the user store (Spring Security's wording, which TAK
# clients match on); unknown users and wrong passwords read the same.
_DESCRIPTIONS = {"locked": ("User account is locked", "locked"), "disabled": ("User is disabled", "disabled")}
_BAD_CREDENTIALS = ("Bad credentials", "bad_credentials")


class OAuthTokens:
    """The token endpoint and the token check the enrollment port uses, over one user and token store."""

    def __init__(
        self, *, users: UserAccounts, tokens: TokenService, auditor: AuditRecorder, clock: Clock,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self._users = users
        self._tokens = tokens
        self._auditor = auditor
        self._clock = clock
        self._metrics = metrics

    @property
    def routes(self) -> list[Route]:
        """``POST /oauth/token``."""
        return [Route(TOKEN_PATH, self.token, methods=["POST"])]

    async def token(self, request: Request) -> Response:
        """The password grant (see the module docstring for the exact answers)."""
        remote = request.client.host if request.client else ""
        try:
            fields = await _fields(request)
        except (LimitExceeded, UnicodeDecodeError, ValueError):
            return self._refuse(400, "invalid_request", "unreadable or oversized form", "bad_form")
        grant = fields.get("grant_type", "")
        if grant != "password":
            return self._refuse(400, "unsupported_grant_type", "only grant_type=password is supported",
                                "bad_grant_type")
        name, password = fields.get("username", ""), fields.get("password", "")
        if not name or len(name) + len(password) > MAX_CREDENTIAL_CHARS:
            return self._refuse(400, "invalid_request", "username and password are required", "bad_form")
        shown = name[:64]
        try:
            user = await self._users.authenticate(name, password, now_ms=self._clock.now_ms())
        except AuthError as exc:
            reason = getattr(exc, "reason", "rejected")
            log.warning("oauth login refused", extra={"user": shown, "reason": reason, "remote": remote})
            self._auditor.record(shown, "login.failed", shown, {"via": "oauth", "reason": reason, "remote": remote})
            description, told = _DESCRIPTIONS.get(reason, _BAD_CREDENTIALS)
            return self._refuse(401, "invalid_grant", description, told, _CHALLENGE)
        self._auditor.record(user.name, "login.ok", user.name, {"via": "oauth", "remote": remote})
        issued = await self._tokens.issue(user.name)
        self._auditor.record(
            user.name, "token.issue", user.name,
            {"via": "oauth", "expires_ms": str(issued.expires_ms), "remote": remote},
        )
        body = {"access_token": issued.token, "token_type": "bearer", "expires_in": issued.expires_in_s,
                "scope": "read write"}
        return JSONResponse(body, media_type=MEDIA_TYPE, headers=_NO_STORE)

    async def user_of(self, conn: HTTPConnection) -> User | None:
        """The enabled account behind the live token a request presents (Bearer or cookie), else None."""
        token = presented_token(conn)
        if not token:
            return None
        principal = await self._tokens.principal_of(token)
        if principal is None:
            return None
        user = await self._users.get(principal)
        if user is None or user.disabled:
            return None
        return user

    def _refuse(self, status: int, error: str, description: str, reason: str,
                headers: dict[str, str] | None = None) -> Response:
        if self._metrics is not None:
            self._metrics.rejected.labels(f"oauth_{reason}", "http").inc()
        body = {"error": error, "error_description": description, "reason": reason}
        return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers={**_NO_STORE, **(headers or {})})


async def _fields(request: Request) -> dict[str, str]:
    """Query parameters overlaid with a form-encoded body (first value of each field)."""
    fields = {k: v for k, v in request.query_params.items()}
    body = await read_limited_body(request, MAX_FORM_BYTES)
    if body:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("", "application/x-www-form-urlencoded"):
            raise ValueError(f"unsupported content type {content_type!r}")
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
        fields.update({k: v[0] for k, v in parsed.items() if v})
    return fields
