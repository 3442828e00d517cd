"""Passwords: the rules a new password must meet, and hashing (argon2id through argon2-cffi).

Clear-text passwords are never stored or logged. The rules follow NIST SP 800-63B section 5.1.1:
length over composition (at least 12 characters here, above the 8 the guideline sets as a floor;
long passphrases allowed), no commonly used passwords (a bundled list, compared case-insensitively,
also after stripping the digits and symbols people pad a word with and undoing common letter
substitutions), and none built from the account or service name.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 12
# Upper bound on a password's length, so a caller cannot make us hash megabytes per attempt.
MAX_PASSWORD_CHARS = 1024
# Fewer different characters than this is a repetition ("aaaaaaaaaaaa", "abababababab").
MIN_DISTINCT_CHARS = 5
COMMON_PASSWORDS_FILE = "common-passwords.txt"
# Names a guesser tries first against this service, whatever the account.
SERVICE_WORDS = frozenset({"rallypoint", "atak", "wintak", "itak", "tak", "takserver"})

_PADDING = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t"})


class WeakPassword(ValueError):
    """A new password breaks a rule; ``str(exc)`` says which, in words for the person choosing it."""


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """What a new password must satisfy. ``common`` holds lower-case passwords and stems to refuse."""

    common: frozenset[str]
    min_chars: int = MIN_PASSWORD_CHARS
    max_chars: int = MAX_PASSWORD_CHARS

    @classmethod
    def bundled(cls) -> PasswordPolicy:
        """The default rules with the common-password list shipped in this package."""
        return cls(common=load_common_passwords())

    def problem(self, password: str, *, user: str | None = None) -> str | None:
        """Why ``password`` is refused for account ``user``, or None if it is acceptable."""
        if not password:
            return "a password cannot be empty"
        if len(password) < self.min_chars:
            return f"a password must be at least {self.min_chars} characters long (this one has {len(password)})"
        if len(password) > self.max_chars:
            return f"a password must be at most {self.max_chars} characters long"
        if len(set(password)) < MIN_DISTINCT_CHARS:
            return f"a password needs at least {MIN_DISTINCT_CHARS} different characters"
        lowered = password.casefold()
        stems = {lowered, _PADDING.sub("", lowered)}
        stems |= {stem.translate(_LEET) for stem in stems}
        stems |= {_PADDING.sub("", stem) for stem in stems}
        # A word typed twice ("trustno1trustno1") is as guessable as the word.
        stems |= {stem[: len(stem) // 2] for stem in stems if len(stem) % 2 == 0 and stem[: len(stem) // 2] * 2 == stem}
        stems.discard("")
        if stems & self.common:
            return "that password is on the list of commonly used passwords; choose a passphrase of unrelated words"
        context = SERVICE_WORDS | ({user.casefold()} if user else set())
        if stems & context:
            return "a password cannot be the account name or the service name, with or without digits added"
        return None

    def check(self, password: str, *, user: str | None = None) -> str:
        """``password`` if acceptable; ``WeakPassword`` saying why not otherwise."""
        reason = self.problem(password, user=user)
        if reason is not None:
            raise WeakPassword(reason)
        return password


def load_common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower case, without comments and blank lines."""
    text = resources.files(__package__).joinpath(COMMON_PASSWORDS_FILE).read_text(encoding="utf-8")
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


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
