"""Password hashing: argon2id through argon2-cffi. Clear-text passwords are never stored or logged."""

from __future__ import annotations

import logging

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)

# Upper bound on a password's length, so a caller cannot make us hash megabytes per attempt.
MAX_PASSWORD_CHARS = 1024


def default_hasher() -> PasswordHasher:
    """The production parameters: argon2-cffi's RFC 9106 low-memory profile, argon2id."""
    return PasswordHasher(type=Type.ID)


def hash_password(password: str, *, hasher: PasswordHasher | None = None) -> str:
    """An encoded argon2id hash (``$argon2id$v=19$...``) of ``password`` with a fresh random salt."""
    if not password:
        raise ValueError("empty password")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password longer than {MAX_PASSWORD_CHARS} characters")
    return (hasher or default_hasher()).hash(password)


def verify_password(encoded: str, password: str, *, hasher: PasswordHasher | None = None) -> bool:
    """True if ``password`` matches ``encoded``; a malformed stored hash never matches."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return (hasher or default_hasher()).verify(encoded, password)
    except InvalidHashError:
        # A corrupted or foreign value in the store: refuse, and say so without echoing it.
        log.warning("stored password hash is not a valid argon2 hash")
        return False
    except VerificationError:
        return False


def needs_rehash(encoded: str, *, hasher: PasswordHasher | None = None) -> bool:
    """True if ``encoded`` was made with weaker or different parameters than ``hasher``'s."""
    try:
        return (hasher or default_hasher()).check_needs_rehash(encoded)
    except InvalidHashError:
        return True
