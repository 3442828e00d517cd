"""Identity binding: a client may only speak for the uids bound to it.

Only a *device SA* binds: an atom that describes the sending device itself, recognised by a
``<takv>`` element or a ``<contact endpoint=...>`` (ATAK, WinTAK and iTAK put both in their own
position report; a marker a user drops has a callsign but neither). A streaming session is bound to
the uid of its first device SA (for a certificate principal listed in ``client_uids``, one of the
uids listed there) and that principal then holds the uid. Markers, shapes and units a client places
or relays never bind and are never refused unless another principal holds their uid.

Refusals, each with its own reason code:

* ``spoofed_uid``: the uid is held by another principal (impersonation);
* ``second_device_uid``: a session bound to one device sent device SA under another uid; only a
  gateway may speak for several devices;
* ``unbound_uid``: the certificate's ``client_uids`` do not list the uid of its device SA.

A *gateway* principal (``client_uids = {"name": ["*"]}``) may publish device SA for any number of
uids over one connection. It takes no ownership of them: a relayed uid stays unheld, so the real
device can still connect and bind it (after which the gateway's reports under it are refused).
Anonymous plaintext clients are bound per session only: without a certificate there is nothing
stable to hold a uid.

In a cluster the holder of a uid is decided cluster-wide (``services/uid_claims.py``): a node that
binds a uid nobody holds tells its claim listener, which records the claim in NATS unless another
principal's claim got there first; :meth:`IdentityPolicy.settle` then makes the recorded holder the
holder on every node, so of two principals binding one uid at once on two nodes exactly one keeps it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.routing.contacts import is_device_sa

__all__ = [
    "GATEWAY", "SECOND_DEVICE_UID", "SPOOFED_UID", "UNBOUND_UID", "Claim", "IdentityPolicy", "IdentityRefused",
    "is_device_sa",
]

GATEWAY = "*"
SPOOFED_UID = "spoofed_uid"
SECOND_DEVICE_UID = "second_device_uid"
UNBOUND_UID = "unbound_uid"


class Claim(enum.Enum):
    """What an accepted event is to the session that sent it."""

    DEVICE = "device"  # the session's own device SA: binds (or refreshes) its uid
    RELAYED = "relayed"  # device SA a gateway relays for another device: an item, never bound
    ITEM = "item"  # anything else: markers, shapes, tracks, chat, tasks


# Read once: an enum member lookup costs about 0.1 us on Python 3.11; ``check`` runs per event.
_DEVICE, _RELAYED, _ITEM = Claim.DEVICE, Claim.RELAYED, Claim.ITEM


class IdentityRefused(RemoteProtocolError):
    """The sender may not speak for this uid; ``reason`` is one of the codes above."""


class IdentityPolicy:
    """Remembers which principal holds which uid and which device uid each session speaks as."""

    def __init__(self, configured: Mapping[str, Iterable[str]] | None = None) -> None:
        lists = {p: frozenset(uids) for p, uids in (configured or {}).items()}
        self._gateways = frozenset(p for p, uids in lists.items() if GATEWAY in uids)
        self._configured = {p: uids - {GATEWAY} for p, uids in lists.items() if uids - {GATEWAY}}
        self._owner: dict[str, str] = {}  # uid -> principal that holds it
        self._session_uid: dict[str, str] = {}
        # Streaming sessions bind their first device SA; datagram and internal producers do not
        # (many mesh devices share one listener) but still cannot use a uid a principal holds.
        self._tracked: set[str] = set()
        for principal, uids in self._configured.items():
            for uid in uids:
                self._owner[uid] = principal
        # Told (uid, principal) when a principal binds a uid nobody held here: the cluster-wide claim.
        self._claim_listener: Callable[[str, str], object] | None = None

    def check(self, session_id: str, principal: str | None, event: CotEvent) -> Claim:
        """What ``event`` is to its session; binds the session's uid on its first device SA.

        Raises :class:`IdentityRefused` when the sender may not speak for the uid.
        """
        uid = event.uid
        owner = self._owner.get(uid)
        if owner is not None and owner != principal:
            raise IdentityRefused(SPOOFED_UID, f"uid {uid!r} is held by another principal ({owner})")
        if not is_device_sa(event) or session_id not in self._tracked:
            return _ITEM
        if principal is not None and principal in self._gateways:
            return _RELAYED
        bound = self._session_uid.get(session_id)
        if bound == uid:
            return _DEVICE
        if bound is not None:
            raise IdentityRefused(
                SECOND_DEVICE_UID,
                f"device SA for uid {uid!r} would be a second device identity of a session bound to "
                f"{bound!r} (only a gateway may relay other devices)",
            )
        allowed = self._configured.get(principal) if principal is not None else None
        if allowed is not None and uid not in allowed:
            raise IdentityRefused(UNBOUND_UID, f"uid {uid!r} is not among the client_uids of {principal!r}")
        self._session_uid[session_id] = uid
        if principal is not None and owner is None:
            self._owner[uid] = principal
            if self._claim_listener is not None:
                self._claim_listener(uid, principal)
        return Claim.DEVICE

    def learn(self, principal: str | None, event: CotEvent) -> None:
        """Another node bound ``event``'s uid to ``principal`` (its device SA from a principal there).

        Uids are owned cluster-wide: the first principal any node saw send a uid's device SA holds
        it on every node. A gateway relays other devices' SA and holds none of them.
        """
        if principal is None or principal in self._gateways or not is_device_sa(event):
            return
        self._owner.setdefault(event.uid, principal)

    def on_claim(self, listener: Callable[[str, str], object]) -> None:
        """Call ``listener(uid, principal)`` whenever a principal binds a uid that nobody held here."""
        self._claim_listener = listener

    def settle(self, uid: str, principal: str) -> str | None:
        """The cluster decided that ``principal`` holds ``uid``; returns the holder it replaced here, if any.

        A uid listed in ``client_uids`` stays with its configured principal whatever the cluster says.
        """
        if any(uid in uids for uids in self._configured.values()):
            return None
        previous = self._owner.get(uid)
        self._owner[uid] = principal
        return previous if previous != principal else None

    def holder_of(self, uid: str) -> str | None:
        """The principal holding ``uid`` (configured, or bound by its first device SA), or None."""
        return self._owner.get(uid)

    def track_session(self, session_id: str) -> None:
        """A streaming session joined: bind it to the first uid it sends device SA for."""
        self._tracked.add(session_id)

    def forget_session(self, session_id: str) -> None:
        """A session ended; its principal keeps its uids (a reconnect may use them again)."""
        self._session_uid.pop(session_id, None)
        self._tracked.discard(session_id)
