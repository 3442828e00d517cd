"""Users and groups: who may log in, with what role, and which TAK groups they write (IN) and read (OUT).

Passwords are optional: an account without one can only connect with a client certificate whose CN
is its name. Password checks run argon2id in a worker thread so the event loop never stalls on them.
``AuthFailed.reason`` is precise for logs and the audit log; what a client is told should stay vague.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Protocol

import msgspec
from argon2 import PasswordHasher

from rallypoint.clock import Clock, SystemClock
from rallypoint.errors import AuthError, RallypointError
from rallypoint.security.ca import CertificateRequestError, validate_name
from rallypoint.security.passwords import (
    PasswordPolicy,
    WeakPassword,
    default_hasher,
    hash_password,
    needs_rehash,
    verify_password,
)
from rallypoint.storage.base.users import UserRecord, UserRecords

log = logging.getLogger(__name__)

ANON_GROUP = "__ANON__"
MAX_GROUP_CHARS = 64
DEFAULT_MAX_FAILURES = 5
DEFAULT_LOCKOUT_SECONDS = 300


class Role(enum.StrEnum):
    """What an account may do beyond sending and receiving CoT."""

    MEMBER = "member"
    APPROVER = "approver"
    ADMIN = "admin"


class User(msgspec.Struct, frozen=True):
    """An account. ``groups_in``: groups the user writes to (TAK IN); ``groups_out``: reads from (OUT)."""

    name: str
    role: Role
    groups_in: frozenset[str]
    groups_out: frozenset[str]
    disabled: bool
    created_ms: int
    updated_ms: int
    failed_logins: int
    locked_until_ms: int | None
    has_password: bool = False


class UserError(RallypointError, ValueError):
    """An administrative request on the user store was refused; ``reason`` is a short stable label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class UserExists(UserError):
    """``add`` of a name that is already taken (names are unique regardless of case)."""


class UserNotFound(UserError):
    """A change to an account that does not exist."""


class AuthFailed(AuthError):
    """A login was refused. ``reason``: ``unknown_user``, ``bad_password``, ``disabled`` or ``locked``."""

    reason = "auth_failed"

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"{self.reason}: {name!r}" + (f" ({detail})" if detail else ""))
        self.name = name
        self.detail = detail


class UnknownUser(AuthFailed):
    """No such account."""

    reason = "unknown_user"


class BadPassword(AuthFailed):
    """Wrong password, or the account has no password (certificate-only)."""

    reason = "bad_password"


class UserDisabled(AuthFailed):
    """The account is disabled."""

    reason = "disabled"


class UserLocked(AuthFailed):
    """Too many failed logins in a row; ``locked_until_ms`` says until when."""

    reason = "locked"

    def __init__(self, name: str, locked_until_ms: int) -> None:
        super().__init__(name, f"until {locked_until_ms}")
        self.locked_until_ms = locked_until_ms


OnChange = Callable[[str], None]


class UserStore(Protocol):
    """Accounts and their groups. ``on_change(name)`` runs on the event loop after each change."""

    async def add(
        self,
        name: str,
        *,
        password: str | None,
        role: Role = Role.MEMBER,
        groups_in: Iterable[str] = (),
        groups_out: Iterable[str] = (),
    ) -> User: ...

    async def get(self, name: str) -> User | None: ...

    async def list(self) -> list[User]: ...

    async def set_password(self, name: str, password: str | None) -> User: ...

    async def set_disabled(self, name: str, disabled: bool) -> User: ...

    async def set_groups(self, name: str, *, groups_in: Iterable[str], groups_out: Iterable[str]) -> User: ...

    async def set_role(self, name: str, role: Role) -> User: ...

    async def authenticate(self, name: str, password: str, *, now_ms: int) -> User: ...

    async def groups_of(self, name: str) -> tuple[frozenset[str], frozenset[str]]: ...

    async def close(self) -> None: ...


def effective_groups(user: User) -> tuple[frozenset[str], frozenset[str]]:
    """(IN, OUT) groups used for routing: an account with no groups at all is in ``__ANON__`` both ways."""
    if not user.groups_in and not user.groups_out:
        anon = frozenset({ANON_GROUP})
        return anon, anon
    return user.groups_in, user.groups_out


def validate_user_name(name: str) -> str:
    """``name`` if it is acceptable (the certificate-name rule); ``UserError("bad_name")`` if not."""
    try:
        return validate_name(name)
    except CertificateRequestError as exc:
        raise UserError("bad_name", exc.detail) from exc


def validate_groups(groups: Iterable[str]) -> frozenset[str]:
    """Group names: 1-64 printable characters without leading or trailing spaces."""
    result = frozenset(groups)
    for group in result:
        if (
            not isinstance(group, str)
            or not group
            or len(group) > MAX_GROUP_CHARS
            or not group.isprintable()
            or group != group.strip()
        ):
            shown = repr(group[:40]) if isinstance(group, str) else "?"
            raise UserError("bad_group", f"{shown} must be 1-{MAX_GROUP_CHARS} printable characters")
    return result


def _validate_password(policy: PasswordPolicy, password: str, user: str) -> None:
    try:
        policy.check(password, user=user)
    except WeakPassword as exc:
        raise UserError("weak_password", str(exc)) from exc


def _user(record: UserRecord) -> User:
    return User(
        name=record.name,
        role=Role(record.role),
        groups_in=frozenset(record.groups_in),
        groups_out=frozenset(record.groups_out),
        disabled=record.disabled,
        created_ms=record.created_ms,
        updated_ms=record.updated_ms,
        failed_logins=record.failed_logins,
        locked_until_ms=record.locked_until_ms,
        has_password=record.password_hash is not None,
    )


class UserAccounts:
    """``UserStore`` over any ``UserRecords`` backend (``storage.factory.open_stores`` picks it).

    After ``max_failures`` failed password logins in a row the account is locked for
    ``lockout_seconds``; a successful login resets the count. Lock bookkeeping is not a "change"
    for ``on_change``: it does not alter what a logged-in session may see.
    """

    def __init__(
        self,
        records: UserRecords,
        *,
        on_change: OnChange | None = None,
        clock: Clock | None = None,
        max_failures: int = DEFAULT_MAX_FAILURES,
        lockout_seconds: float = DEFAULT_LOCKOUT_SECONDS,
        hasher: PasswordHasher | None = None,
        password_policy: PasswordPolicy | None = None,
    ) -> None:
        if max_failures < 1 or lockout_seconds < 0:
            raise ValueError("max_failures must be >= 1 and lockout_seconds >= 0")
        self._records = records
        self.on_change = on_change
        self._clock = clock or SystemClock()
        self._max_failures = max_failures
        self._lock_ms = int(lockout_seconds * 1000)
        self._hasher = hasher or default_hasher()
        # Every new password passes these rules, whoever sets it (CLI, admin API).
        self._policy = password_policy or PasswordPolicy.bundled()
        self._dummy_hash: str | None = None

    async def add(
        self,
        name: str,
        *,
        password: str | None,
        role: Role = Role.MEMBER,
        groups_in: Iterable[str] = (),
        groups_out: Iterable[str] = (),
    ) -> User:
        """Create an account; ``password=None`` makes it certificate-only. ``UserExists`` if taken."""
        validate_user_name(name)
        g_in, g_out = validate_groups(groups_in), validate_groups(groups_out)
        pw_hash = None
        if password is not None:
            _validate_password(self._policy, password, name)
            pw_hash = await self._hash(password)
        now = self._clock.now_ms()
        record = UserRecord(
            name=name, role=Role(role).value, groups_in=g_in, groups_out=g_out,
            password_hash=pw_hash, disabled=False, created_ms=now, updated_ms=now, failed_logins=0,
            locked_until_ms=None,
        )
        if not await self._records.insert(record):
            raise UserExists("exists", f"user {name!r} already exists")
        log.info("user added", extra={"user": name, "role": record.role})
        self._changed(name)
        return _user(record)

    async def get(self, name: str) -> User | None:
        """The account, or None."""
        record = await self._records.get(name)
        return None if record is None else _user(record)

    async def list(self) -> list[User]:
        """Every account, by name."""
        return [_user(r) for r in await self._records.list()]

    async def set_password(self, name: str, password: str | None) -> User:
        """Replace the password; ``None`` removes it (the account becomes certificate-only)."""
        pw_hash = None
        if password is not None:
            _validate_password(self._policy, password, name)
            pw_hash = await self._hash(password)
        return await self._update(name, {"password_hash": pw_hash})

    async def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable or re-enable the account."""
        return await self._update(name, {"disabled": disabled})

    async def set_groups(self, name: str, *, groups_in: Iterable[str], groups_out: Iterable[str]) -> User:
        """Replace both group sets."""
        g_in, g_out = validate_groups(groups_in), validate_groups(groups_out)
        return await self._update(name, {"groups_in": g_in, "groups_out": g_out})

    async def set_role(self, name: str, role: Role) -> User:
        """Change the role."""
        return await self._update(name, {"role": Role(role).value})

    async def unlock(self, name: str) -> User:
        """Clear a login lock and the failure count now, instead of waiting for the lock to expire.

        ``UserNotFound`` if there is no such account. Not a "change" for ``on_change``: what a
        session may see does not depend on the lock.
        """
        record = await self._records.get(name)
        if record is None:
            raise UserNotFound("not_found", f"no user {name!r}")
        await self._records.record_success(record.name)
        return msgspec.structs.replace(_user(record), failed_logins=0, locked_until_ms=None)

    async def groups_of(self, name: str) -> tuple[frozenset[str], frozenset[str]]:
        """(IN, OUT) groups for routing (see ``effective_groups``); ``UserNotFound`` if no such account."""
        user = await self.get(name)
        if user is None:
            raise UserNotFound("not_found", f"no user {name!r}")
        return effective_groups(user)

    async def authenticate(self, name: str, password: str, *, now_ms: int) -> User:
        """The account if ``password`` is right and it may log in; otherwise an ``AuthFailed`` subclass.

        Unknown names and certificate-only accounts still pay for one argon2 verification, so timing
        does not tell which names exist.
        """
        record = await self._records.get(name) if isinstance(name, str) and name else None
        if record is None:
            await self._verify(await self._dummy(), password)
            raise UnknownUser(name)
        if record.locked_until_ms is not None and now_ms < record.locked_until_ms:
            raise UserLocked(record.name, record.locked_until_ms)
        if record.password_hash is None:
            await self._verify(await self._dummy(), password)
            raise BadPassword(record.name, "no password: certificate-only account")
        if not await self._verify(record.password_hash, password):
            after = await self._records.record_failure(
                record.name, now_ms=now_ms, max_failures=self._max_failures, lock_ms=self._lock_ms
            )
            if after is not None and after.locked_until_ms is not None and after.locked_until_ms > now_ms:
                log.warning("user locked after failed logins", extra={"user": record.name})
            raise BadPassword(record.name)
        if record.disabled:
            raise UserDisabled(record.name)
        rehashed = None
        if needs_rehash(record.password_hash, hasher=self._hasher):
            rehashed = await self._hash(password)
        await self._records.record_success(record.name, password_hash=rehashed)
        return msgspec.structs.replace(_user(record), failed_logins=0, locked_until_ms=None)

    async def stamp(self) -> object:
        """Changes whenever an account is added or changed, by this process or another (see ``UserRecords``)."""
        return await self._records.stamp()

    async def close(self) -> None:
        """Close the backend."""
        await self._records.close()

    async def _update(self, name: str, changes: dict[str, object]) -> User:
        record = await self._records.update(name, changes, now_ms=self._clock.now_ms())
        if record is None:
            raise UserNotFound("not_found", f"no user {name!r}")
        self._changed(record.name)
        return _user(record)

    def _changed(self, name: str) -> None:
        if self.on_change is not None:
            self.on_change(name)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(hash_password, password, hasher=self._hasher)

    async def _verify(self, encoded: str, password: str) -> bool:
        if not isinstance(password, str):
            return False
        return await asyncio.to_thread(verify_password, encoded, password, hasher=self._hasher)

    async def _dummy(self) -> str:
        # Made once per store with the store's own parameters, so it costs what a real check costs.
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(24))
        return self._dummy_hash
