"""What a token store keeps: issued API tokens by digest (``security.tokens`` holds the rules).

Only the SHA-256 digest of a token's id is kept, so a copy of the store grants nothing. ``session``
groups a login with the tokens renewed from it, so that logging out ends all of them at once.
Principals compare without regard to case, as user names do.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class TokenRecord(msgspec.Struct, frozen=True):
    """One issued token, by digest."""

    digest: bytes
    principal: str
    issued_ms: int
    expires_ms: int
    revoked_ms: int | None = None
    session: str | None = None


class TokenRecords(Protocol):
    """Token rows."""

    async def insert(self, record: TokenRecord) -> None:
        """Store a newly issued token."""
        ...

    async def get(self, digest: bytes) -> TokenRecord | None:
        """The token with this digest, revoked or not, or None."""
        ...

    async def revoke(self, digest: bytes, *, now_ms: int) -> bool:
        """Mark one live token revoked; False if it is unknown or already revoked."""
        ...

    async def revoke_session(self, session: str, *, now_ms: int) -> int:
        """Revoke every unexpired, unrevoked token of one login session; returns how many."""
        ...

    async def revoke_principal(self, principal: str, *, now_ms: int) -> int:
        """Revoke every unexpired, unrevoked token of ``principal`` (any case); returns how many."""
        ...

    async def prune(self, *, now_ms: int) -> int:
        """Delete tokens with ``expires_ms <= now_ms``; returns how many."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
