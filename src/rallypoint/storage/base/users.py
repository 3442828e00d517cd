"""What a user store keeps: account rows (``security.users`` holds the rules; stores only keep rows).

Semantics every backend shares (``tests/contract/test_user_store.py`` pins them):

* Names are unique without regard to case: ``alice`` and ``Alice`` are one account, looked up by
  either spelling; the spelling given at creation is kept.
* Groups are frozensets of exact names; ``list()`` is ordered by name (case-insensitively).
* ``record_failure`` is atomic: concurrent failures (from several nodes) all count.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

# Columns an administrative update may set; anything else is a programming error.
UPDATABLE_USER_FIELDS = frozenset({"role", "groups_in", "groups_out", "password_hash", "disabled"})


class UserRecord(msgspec.Struct, frozen=True):
    """One stored account, as the storage layer sees it."""

    name: str
    role: str
    groups_in: frozenset[str]
    groups_out: frozenset[str]
    password_hash: str | None
    disabled: bool
    created_ms: int
    updated_ms: int
    failed_logins: int
    locked_until_ms: int | None


class UserRecords(Protocol):
    """Account rows."""

    async def insert(self, record: UserRecord) -> bool:
        """Insert ``record``; False (and nothing written) if the name is taken (any case)."""
        ...

    async def get(self, name: str) -> UserRecord | None:
        """The account called ``name`` (any case), or None."""
        ...

    async def list(self) -> list[UserRecord]:
        """Every account, ordered by name."""
        ...

    async def update(self, name: str, changes: dict[str, Any], *, now_ms: int) -> UserRecord | None:
        """Set the given fields (``UPDATABLE_USER_FIELDS``) and ``updated_ms``; the new record, or None."""
        ...

    async def record_failure(
        self, name: str, *, now_ms: int, max_failures: int, lock_ms: int
    ) -> UserRecord | None:
        """Count one failed login; at ``max_failures`` in a row, lock until ``now_ms + lock_ms``.

        The counter restarts at zero when the lock is applied, so after the lock expires the account
        gets ``max_failures`` fresh attempts. None if there is no such account.
        """
        ...

    async def record_success(self, name: str, *, password_hash: str | None = None) -> None:
        """Reset the failure counter and any lock; optionally replace the hash (rehash on login)."""
        ...

    async def stamp(self) -> object:
        """A value that changes whenever an account is added or changed (by this process or another).

        Compared for equality only; it may also change when nothing an account holder sees did.
        """
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...


def check_user_changes(changes: dict[str, Any]) -> None:
    """Refuse (``ValueError``) a change to a field ``update`` may not set."""
    unknown = set(changes) - UPDATABLE_USER_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
