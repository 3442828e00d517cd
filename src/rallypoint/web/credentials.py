"""Where a request carries a token: ``Authorization: Bearer``, else TAK Server's ``access_token`` cookie.

TAK Server accepts its OAuth token both ways (node-tak and CloudTAK send the cookie), so every
route that takes a token takes either; the header wins when both are present.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import Scope

ACCESS_TOKEN_COOKIE = "access_token"
# Browsers cannot set headers on a WebSocket: the live feed takes its token as a subprotocol.
TOKEN_SUBPROTOCOL_PREFIX = "bearer."


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer`` header ("" when the header is malformed), else None."""
    header = conn.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def presented_token(conn: HTTPConnection) -> str | None:
    """The token a request presents: Bearer header, else ``access_token`` cookie, else None."""
    token = bearer_token(conn)
    if token is not None:
        return token
    cookie = conn.cookies.get(ACCESS_TOKEN_COOKIE)
    return cookie.strip() if cookie is not None else None


def with_token(scope: Scope, token: str) -> HTTPConnection:
    """A connection like ``scope``'s presenting ``token`` as its Bearer header (other credentials kept)."""
    headers = [(k, v) for k, v in scope.get("headers", []) if k != b"authorization"]
    headers.append((b"authorization", b"Bearer " + token.encode("latin-1", "replace")))
    return HTTPConnection({**scope, "headers": headers})


def bearer_from_subprotocol(scope: Scope) -> Scope:
    """``scope`` with a ``bearer.<token>`` subprotocol turned into an Authorization header (a copy)."""
    headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
    if any(name == b"authorization" for name, _ in headers):
        return scope
    offered = [p.strip() for p in scope.get("subprotocols", [])]
    tokens = [p[len(TOKEN_SUBPROTOCOL_PREFIX):] for p in offered if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)]
    if not tokens:
        return scope
    # Never echoed back: the accepted subprotocol is always the feed's own.
    kept = [p for p in offered if not p.startswith(TOKEN_SUBPROTOCOL_PREFIX)]
    headers = [
        (name, b", ".join(p.encode() for p in kept) if name == b"sec-websocket-protocol" else value)
        for name, value in headers
    ]
    headers.append((b"authorization", b"Bearer " + tokens[0].encode("latin-1", "replace")))
    return {**scope, "headers": headers, "subprotocols": kept}
