"""Which receiving identity each connected session speaks for, and the sessions of each identity.

A session is attached to one identity at a time: a certificate client's principal when it joins,
or the uid of its first self-SA; attaching it again under another identity moves it.
"""

from __future__ import annotations

from rallypoint.routing.directory import Subscriber


class ConnectedIdentities:
    """Identity -> its connected sessions (id -> subscriber), and the reverse."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Subscriber]] = {}
        self._identity_of: dict[str, str] = {}

    def identity_of(self, session_id: str) -> str | None:
        """The identity the session speaks for, if it is known."""
        return self._identity_of.get(session_id)

    def attach(self, identity: str, sub: Subscriber) -> None:
        """The session speaks for ``identity`` (no longer for any other)."""
        previous = self._identity_of.get(sub.id)
        if previous == identity:
            return
        if previous is not None:
            self._drop(previous, sub.id)
        self._identity_of[sub.id] = identity
        self.sessions.setdefault(identity, {})[sub.id] = sub

    def detach(self, session_id: str) -> str | None:
        """The session is gone; returns the identity it spoke for (offline if it was its last)."""
        identity = self._identity_of.pop(session_id, None)
        if identity is not None:
            self._drop(identity, session_id)
        return identity

    def _drop(self, identity: str, session_id: str) -> None:
        sessions = self.sessions.get(identity)
        if sessions is not None:
            sessions.pop(session_id, None)
            if not sessions:
                del self.sessions[identity]
