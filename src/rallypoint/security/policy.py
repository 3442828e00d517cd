"""Identity binding: a client may only speak for the uids bound to it.

A session's own uid is the first self-SA it sends (or, for a certificate principal, one of the uids
configured for it). After that the session may not publish SA under another uid, and no one may
publish anything under a uid that a different principal holds. Anonymous plaintext clients are
bound per session only: without a certificate there is nothing stable to bind to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rallypoint.model.cot import CotEvent
from rallypoint.model.cot_type import is_atom


def is_self_sa(event: CotEvent) -> bool:
    """An event describing the sending device itself: an atom with a contact, not linked to a parent."""
    return is_atom(event.type) and event.detail.callsign is not None and event.detail.link_relation != "p-p"


class IdentityPolicy:
    """Remembers which principal holds which uid and rejects events that would impersonate another."""

    def __init__(self, configured: Mapping[str, Iterable[str]] | None = None) -> None:
        self._configured = {p: frozenset(uids) for p, uids in (configured or {}).items()}
        self._owner: dict[str, str] = {}  # uid -> principal that holds it
        self._session_uid: dict[str, str] = {}
        # Streaming sessions bind their first self-SA uid; datagram and internal producers do not
        # (many mesh devices share one listener) but still cannot use a uid a principal holds.
        self._tracked: set[str] = set()
        for principal, uids in self._configured.items():
            for uid in uids:
                self._owner[uid] = principal

    def check(self, session_id: str, principal: str | None, event: CotEvent) -> str | None:
        """``None`` if allowed, else a short reason; binds the session's uid on its first self-SA."""
        uid = event.uid
        owner = self._owner.get(uid)
        if owner is not None and owner != principal:
            return "spoofed_uid"
        if not is_self_sa(event) or session_id not in self._tracked:
            return None
        bound = self._session_uid.get(session_id)
        if bound is None:
            allowed = self._configured.get(principal) if principal is not None else None
            if allowed is not None and uid not in allowed:
                return "unbound_uid"
            self._session_uid[session_id] = uid
            if principal is not None:
                self._owner.setdefault(uid, principal)
            return None
        return None if bound == uid else "spoofed_uid"

    def holder_of(self, uid: str) -> str | None:
        """The principal holding ``uid`` (configured, or bound by its first self-SA), or None."""
        return self._owner.get(uid)

    def track_session(self, session_id: str) -> None:
        """A streaming session joined: bind it to the first uid it sends SA for."""
        self._tracked.add(session_id)

    def forget_session(self, session_id: str) -> None:
        """A session ended; its principal keeps its uids (a reconnect may use them again)."""
        self._session_uid.pop(session_id, None)
        self._tracked.discard(session_id)
