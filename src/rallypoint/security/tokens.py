"""Short-lived bearer tokens: JSON Web Tokens that the token store can revoke at once.

A token is a JWT (HS256) signed with a 256-bit secret generated on first use in
``DATA_DIR/token-signing.key`` (mode 0600; deleting it invalidates every token). Its claims are
``sub`` (the principal), ``aud`` (``rallypoint``), ``iat``/``nbf``/``exp`` (seconds), ``jti`` (the
token id) and ``sid`` (the login session it was issued or renewed in). The header is the plain
``{"alg":"HS256","typ":"JWT"}`` that TAK tooling expects (node-tak decodes the claims by hand).

A signature alone grants nothing: the SHA-256 digest of every ``jti`` is stored with its principal,
session and expiry in ``DATA_DIR/tokens.db``, and a token is live only while that row is unexpired
and unrevoked, so revocation (one session, or all tokens of an account) takes effect on the next
request, and another process (the CLI) can revoke. Whoever checks a token still asks the user store
whether the principal may act (a disabled account's tokens stop working at once).

Renewal issues a new token in the same session while the presented one is still live; an expired
token cannot be renewed. Revoking a token revokes its whole session (the login and its renewals).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

import jwt
import msgspec

from rallypoint.clock import Clock
from rallypoint.storage.base.tokens import TokenRecord, TokenRecords

log = logging.getLogger(__name__)

# Fifteen minutes: long enough for a script's run, short enough that a leaked token soon dies.
DEFAULT_TOKEN_TTL_S = 900
KEY_FILE = "token-signing.key"
KEY_BYTES = 32
ALGORITHM = "HS256"
AUDIENCE = "rallypoint"
# Anything longer is not one of ours; refused before any decoding.
MAX_TOKEN_CHARS = 4096
_DECODE_OPTIONS = {
    # Times are checked against the injected clock below, not the system clock.
    "verify_exp": False, "verify_nbf": False, "verify_iat": False,
    "require": ["sub", "jti", "exp"],
}


class IssuedToken(msgspec.Struct, frozen=True):
    """A freshly issued token: the secret (shown once), its session and when it expires."""

    token: str
    principal: str
    expires_ms: int
    expires_in_s: int
    session: str = ""


class TokenClaims(msgspec.Struct, frozen=True):
    """What a live token says: who, which token and session, until when."""

    principal: str
    token_id: str
    session: str
    expires_ms: int


def digest_of(token_id: str) -> bytes:
    """SHA-256 of a token id (what is stored and looked up)."""
    return hashlib.sha256(token_id.encode("utf-8", "surrogatepass")).digest()


def load_or_create_key(path: Path) -> bytes:
    """The signing secret in ``path``, created (0600, never overwritten) when missing."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path)  # another process created it first: use theirs
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        log.info("token signing key created", extra={"path": str(path)})
        return key
    if len(key) < KEY_BYTES:
        raise ValueError(f"{path}: token signing key shorter than {KEY_BYTES} bytes")
    return key


class TokenService:
    """Issue, check, renew and revoke tokens.

    The signing key is a file (``key_path``, ``DATA_DIR/token-signing.key`` by convention; nodes sharing a
    token store share it too) read on first use, so a process that only revokes (the CLI) never needs it.
    """

    def __init__(
        self, records: TokenRecords, *, key_path: Path, clock: Clock, ttl_s: int = DEFAULT_TOKEN_TTL_S
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._records = records
        self._clock = clock
        self._key_path = key_path
        self._key: bytes | None = None
        self.ttl_s = ttl_s

    def _signing_key(self) -> bytes:
        if self._key is None:
            self._key = load_or_create_key(self._key_path)
        return self._key

    async def issue(self, principal: str, *, session: str | None = None) -> IssuedToken:
        """A new token for ``principal``, valid for ``ttl_s`` seconds from now, in a new or the given session."""
        now = self._clock.now_ms()
        token_id = secrets.token_urlsafe(16)
        session = session or secrets.token_urlsafe(16)
        expires = now + self.ttl_s * 1000
        claims = {
            "sub": principal, "aud": AUDIENCE, "iat": now // 1000, "nbf": now // 1000,
            "exp": expires // 1000, "jti": token_id, "sid": session,
        }
        token = jwt.encode(claims, self._signing_key(), algorithm=ALGORITHM)
        await self._records.insert(
            TokenRecord(digest=digest_of(token_id), principal=principal, issued_ms=now, expires_ms=expires,
                        session=session)
        )
        return IssuedToken(token=token, principal=principal, expires_ms=expires, expires_in_s=self.ttl_s,
                           session=session)

    async def check(self, token: str) -> TokenClaims | None:
        """The claims of a live token (our signature, known, unexpired, unrevoked), else None."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            claims = jwt.decode(token, self._signing_key(), algorithms=[ALGORITHM], audience=AUDIENCE,
                                options=_DECODE_OPTIONS)  # type: ignore[arg-type]
        except jwt.PyJWTError:
            return None
        token_id, principal, exp = claims.get("jti"), claims.get("sub"), claims.get("exp")
        if not isinstance(token_id, str) or not isinstance(principal, str) or not isinstance(exp, int):
            return None
        now = self._clock.now_ms()
        # The stored expiry (milliseconds) decides; ``exp`` is the same instant in whole seconds.
        record = await self._records.get(digest_of(token_id))
        if record is None or record.revoked_ms is not None or record.expires_ms <= now:
            return None
        if record.principal != principal:
            return None
        return TokenClaims(principal=principal, token_id=token_id, session=record.session or "",
                           expires_ms=record.expires_ms)

    async def principal_of(self, token: str) -> str | None:
        """The principal a live token speaks for, else None."""
        claims = await self.check(token)
        return None if claims is None else claims.principal

    async def renew(self, token: str) -> IssuedToken | None:
        """A fresh token in the same session as a live ``token``; None when it is not live."""
        claims = await self.check(token)
        if claims is None:
            return None
        return await self.issue(claims.principal, session=claims.session or None)

    async def revoke(self, token: str) -> str | None:
        """Revoke a live token and every other token of its session; returns its principal, or None."""
        claims = await self.check(token)
        if claims is None:
            return None
        now = self._clock.now_ms()
        if claims.session:
            await self._records.revoke_session(claims.session, now_ms=now)
        else:
            await self._records.revoke(digest_of(claims.token_id), now_ms=now)
        return claims.principal

    async def revoke_principal(self, principal: str) -> int:
        """Revoke every live token of ``principal``; returns how many."""
        return await self._records.revoke_principal(principal, now_ms=self._clock.now_ms())

    async def prune(self) -> int:
        """Forget expired tokens (they are refused anyway; this only keeps the file small)."""
        return await self._records.prune(now_ms=self._clock.now_ms())

    async def close(self) -> None:
        """Close the database."""
        await self._records.close()
