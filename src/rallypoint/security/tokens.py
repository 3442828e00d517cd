"""Short-lived bearer tokens for the native API.

A token is 256 random bits (URL-safe base64). Only its SHA-256 digest is stored, with the principal
it speaks for and its expiry, in ``DATA_DIR/tokens.db`` so tokens survive a restart and another
process (the CLI) can revoke them. A token grants nothing by itself: whoever checks it still asks
the user store whether the principal may act (a disabled account's tokens stop working at once).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from pathlib import Path

import msgspec

from rallypoint.clock import Clock
from rallypoint.storage.sqlite.tokens import SqliteTokenRecords, TokenRecord

log = logging.getLogger(__name__)

# Fifteen minutes: long enough for a script's run, short enough that a leaked token soon dies.
DEFAULT_TOKEN_TTL_S = 900
TOKEN_BYTES = 32
# Anything longer is not one of ours; refused before hashing.
MAX_TOKEN_CHARS = 128


class IssuedToken(msgspec.Struct, frozen=True):
    """A freshly issued token: the secret (shown once) and when it expires."""

    token: str
    principal: str
    expires_ms: int
    expires_in_s: int


def digest_of(token: str) -> bytes:
    """SHA-256 of the token text (what is stored and looked up)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenService:
    """Issue, check and revoke tokens."""

    def __init__(self, path: Path, *, clock: Clock, ttl_s: int = DEFAULT_TOKEN_TTL_S) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._records = SqliteTokenRecords(path)
        self._clock = clock
        self.ttl_s = ttl_s

    @property
    def path(self) -> Path:
        """The token database file."""
        return self._records.path

    async def issue(self, principal: str) -> IssuedToken:
        """A new token for ``principal``, valid for ``ttl_s`` seconds from now."""
        now = self._clock.now_ms()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires = now + self.ttl_s * 1000
        await self._records.insert(
            TokenRecord(digest=digest_of(token), principal=principal, issued_ms=now, expires_ms=expires)
        )
        return IssuedToken(token=token, principal=principal, expires_ms=expires, expires_in_s=self.ttl_s)

    async def principal_of(self, token: str) -> str | None:
        """The principal a live (known, unexpired, unrevoked) token speaks for, else None."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        record = await self._records.get(digest_of(token))
        if record is None or record.revoked_ms is not None:
            return None
        if record.expires_ms <= self._clock.now_ms():
            return None
        return record.principal

    async def revoke(self, token: str) -> str | None:
        """Revoke one token; returns its principal, or None if it was not live."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = digest_of(token)
        record = await self._records.get(digest)
        if record is None:
            return None
        if not await self._records.revoke(digest, now_ms=self._clock.now_ms()):
            return None
        return record.principal

    async def revoke_principal(self, principal: str) -> int:
        """Revoke every live token of ``principal``; returns how many."""
        return await self._records.revoke_principal(principal, now_ms=self._clock.now_ms())

    async def prune(self) -> int:
        """Forget expired tokens (they are refused anyway; this only keeps the file small)."""
        return await self._records.prune(now_ms=self._clock.now_ms())

    async def close(self) -> None:
        """Close the database."""
        await self._records.close()
