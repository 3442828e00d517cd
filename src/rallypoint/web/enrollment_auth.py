"""HTTP Basic credentials and bounded request bodies for the enrollment port."""

from __future__ import annotations

import base64
import binascii
from typing import Protocol

from starlette.requests import Request

from rallypoint.errors import AuthError, LimitExceeded

REALM = "Rallypoint"
# Longer credentials are refused before they reach the password hasher.
MAX_CREDENTIAL_CHARS = 2048


class AuthenticatedUser(Protocol):
    """What enrollment needs from an authenticated user: the name its certificate CN must carry."""

    @property
    def name(self) -> str: ...


class Authenticator(Protocol):
    """Checks a username and password; raises :class:`AuthError` when they do not identify a user."""

    async def authenticate(self, name: str, password: str, *, now_ms: int) -> AuthenticatedUser: ...


class MissingCredentials(AuthError):
    """The request carried no usable ``Authorization: Basic`` header."""

    reason = "no_credentials"


def basic_credentials(request: Request) -> tuple[str, str]:
    """(username, password) from the request's Basic header; :class:`MissingCredentials` if absent or malformed."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > MAX_CREDENTIAL_CHARS * 2:
        raise MissingCredentials("no basic credentials")
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MissingCredentials("credentials are not base64") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Some clients still send ISO-8859-1 (RFC 7617 leaves the charset to negotiation).
        text = raw.decode("latin-1")
    name, sep, password = text.partition(":")
    if not sep or not name or len(text) > MAX_CREDENTIAL_CHARS:
        raise MissingCredentials("malformed credentials")
    return name, password


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (``LimitExceeded``) past ``limit`` bytes whatever Content-Length claimed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise LimitExceeded("body", limit=limit, got=int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LimitExceeded("body", limit=limit, got=size)
        chunks.append(chunk)
    return b"".join(chunks)
