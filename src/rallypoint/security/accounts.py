"""Who a connecting principal is: groups from the user store, then configured groups, else ``__ANON__``.

The streaming path needs this synchronously (in ``connection_made``), so the server keeps a cache of
the user store and reloads it when the store changes on disk (the CLI edits it from another process).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rallypoint.security.users import ANON_GROUP, User, effective_groups

_ANON = frozenset({ANON_GROUP})


class Access(tuple[frozenset[str], frozenset[str]]):
    """``(write groups, read groups)``: TAK IN and OUT."""

    __slots__ = ()

    @property
    def write(self) -> frozenset[str]:
        return self[0]

    @property
    def read(self) -> frozenset[str]:
        return self[1]


ANONYMOUS = Access((_ANON, _ANON))


class AccountCache:
    """Synchronous view of accounts for the transports."""

    def __init__(self, configured: Mapping[str, Iterable[str]] | None = None) -> None:
        self._configured = {name: frozenset(groups) for name, groups in (configured or {}).items()}
        self._users: dict[str, User] = {}

    def load(self, users: Iterable[User]) -> None:
        """Replace the cached accounts (names compared without case, as the store does)."""
        self._users = {user.name.casefold(): user for user in users}

    def known_groups(self) -> frozenset[str]:
        """``__ANON__`` and every group an enabled account or a configured certificate reads."""
        groups = set(_ANON)
        for user in self._users.values():
            if not user.disabled:
                groups.update(effective_groups(user)[1])
        for configured in self._configured.values():
            groups.update(configured)
        return frozenset(groups)

    def user(self, principal: str | None) -> User | None:
        return None if principal is None else self._users.get(principal.casefold())

    def access_for(self, principal: str | None) -> Access | None:
        """Groups of a principal; ``None`` means refuse it (a disabled account)."""
        if principal is None:
            return ANONYMOUS
        user = self.user(principal)
        if user is not None:
            if user.disabled:
                return None
            groups_in, groups_out = effective_groups(user)
            return Access((groups_in, groups_out))
        groups = self._configured.get(principal)
        if groups:
            return Access((groups, groups))
        return ANONYMOUS
