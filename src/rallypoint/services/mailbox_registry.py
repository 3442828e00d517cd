"""Known receivers of store-and-forward, so an address can be resolved while its owner is offline.

A receiving identity is ``principal:<name>`` for a client with a certificate (known at connect) and
``uid:<uid>`` for an anonymous client (known from its first device SA). Each identity remembers the
uid and callsign it last spoke as and the read groups it last had; addresses resolve to the identity
that most recently claimed that uid or callsign.
"""

from __future__ import annotations

from collections.abc import Iterable

from rallypoint.model.cot import CotEvent
from rallypoint.model.cot_type import (
    CHAT_DELIVERY_FAILURE,
    EMERGENCY_CANCEL,
    GROUPS_CHANGED,
    PING,
    is_atom,
    is_control,
    is_emergency,
)
from rallypoint.storage.base.mailbox import RecipientRecord

PRINCIPAL_PREFIX = "principal:"
UID_PREFIX = "uid:"


def principal_identity(principal: str) -> str:
    """The identity of a certificate (or token) principal."""
    return PRINCIPAL_PREFIX + principal


def uid_identity(uid: str) -> str:
    """The identity of an anonymous client that bound ``uid`` with its device SA."""
    return UID_PREFIX + uid


def is_storable(event: CotEvent) -> bool:
    """Whether an explicitly addressed event is kept for offline recipients.

    Kept: chat and receipts, tasks (``t-*``, mission changes included), markers, shapes, designations
    and any other addressed item. Not kept: positions and SA (a stale position is worse than none),
    pings and control messages, emergencies (the emergency service replays those itself) and notices
    the server makes for one session.
    """
    cot_type = event.type
    if is_control(cot_type) or cot_type.startswith(PING) or cot_type in (CHAT_DELIVERY_FAILURE, GROUPS_CHANGED):
        return False
    if is_emergency(cot_type) or cot_type == EMERGENCY_CANCEL:
        return False
    if is_atom(cot_type):
        # A unit placed by a user (linked to its creator) is a designation; any other atom is a position.
        return event.detail.link_relation == "p-p"
    return True


class RecipientRegistry:
    """In-memory index of known identities by uid, callsign and read group; bounded by ``max_size``.

    When full, the identity seen longest ago is forgotten (its pending mail with it).
    """

    def __init__(self, records: Iterable[RecipientRecord] = (), *, max_size: int = 10_000) -> None:
        self._max_size = max_size
        self._records: dict[str, RecipientRecord] = {}
        self._by_uid: dict[str, str] = {}
        self._by_callsign: dict[str, str] = {}
        self._readers: dict[str, set[str]] = {}
        # Oldest first, so the latest claimant of a uid or callsign wins the index.
        for record in sorted(records, key=lambda r: r.last_seen_ms):
            self._index(record)

    def __len__(self) -> int:
        return len(self._records)

    def get(self, identity: str) -> RecipientRecord | None:
        """The record of an identity, if known."""
        return self._records.get(identity)

    def update(self, record: RecipientRecord) -> list[str]:
        """Insert or replace a record; returns identities forgotten to stay within ``max_size``."""
        self._unindex(record.identity)
        self._index(record)
        evicted: list[str] = []
        while len(self._records) > self._max_size:
            oldest = min(
                (r for r in self._records.values() if r.identity != record.identity),
                key=lambda r: r.last_seen_ms,
            )
            self._unindex(oldest.identity)
            evicted.append(oldest.identity)
        return evicted

    def by_address(self, uid: str | None, callsign: str | None) -> list[str]:
        """Identities that last spoke as ``uid`` or ``callsign``."""
        found: list[str] = []
        if callsign is not None and (identity := self._by_callsign.get(callsign)) is not None:
            found.append(identity)
        if uid is not None and (identity := self._by_uid.get(uid)) is not None and identity not in found:
            found.append(identity)
        return found

    def resolve(
        self,
        *,
        principals: Iterable[str] = (),
        uids: Iterable[str] = (),
        callsigns: Iterable[str] = (),
        groups: Iterable[str] = (),
    ) -> list[str]:
        """Known identities named by principal, uid, callsign or group, once each, in that order.

        A group names its known *principal* readers only: an anonymous client reads its group before
        its first SA identifies it, so it would get a group's message twice.
        """
        found: dict[str, None] = {}
        for principal in principals:
            if (identity := principal_identity(principal)) in self._records:
                found[identity] = None
        for uid in uids:
            found.update(dict.fromkeys(self.by_address(uid, None)))
        for callsign in callsigns:
            found.update(dict.fromkeys(self.by_address(None, callsign)))
        for group in groups:
            found.update(dict.fromkeys(i for i in self.readers(group) if self._records[i].principal is not None))
        return list(found)

    def readers(self, group: str) -> Iterable[str]:
        """Identities whose last known read groups include ``group``."""
        return tuple(self._readers.get(group, ()))

    def _index(self, record: RecipientRecord) -> None:
        identity = record.identity
        self._records[identity] = record
        if record.uid is not None:
            self._by_uid[record.uid] = identity
        if record.callsign is not None:
            self._by_callsign[record.callsign] = identity
        for group in record.read_groups:
            self._readers.setdefault(group, set()).add(identity)

    def _unindex(self, identity: str) -> None:
        old = self._records.pop(identity, None)
        if old is None:
            return
        if old.uid is not None and self._by_uid.get(old.uid) == identity:
            del self._by_uid[old.uid]
        if old.callsign is not None and self._by_callsign.get(old.callsign) == identity:
            del self._by_callsign[old.callsign]
        for group in old.read_groups:
            members = self._readers.get(group)
            if members is not None:
                members.discard(identity)
                if not members:
                    del self._readers[group]
