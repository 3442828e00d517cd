"""Index of the receivers connected to this node: by id, uid, callsign and read group."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from rallypoint.routing.envelope import Envelope


class Subscriber(Protocol):
    """Anything that can receive envelopes: a streaming session, a web socket, a federation link."""

    @property
    def id(self) -> str: ...

    @property
    def read_groups(self) -> frozenset[str]: ...

    @property
    def write_groups(self) -> frozenset[str]: ...

    def offer(self, envelope: Envelope) -> None: ...


# A receiver's ``offer_many(envelopes)``, when it has one: offers them in order, as many ``offer`` calls would.
OfferMany = Callable[[list[Envelope]], None]
Offers = tuple[tuple[str, Callable[[Envelope], None], OfferMany | None], ...]


class Directory:
    """Who is connected, and how to find them.

    ``uid``, ``callsign`` and team (``__group`` name) are learned from a client's own SA; one uid or
    callsign maps to the most recent subscriber that claimed it (a reconnecting phone replaces its
    old session).
    """

    def __init__(self) -> None:
        self._by_id: dict[str, Subscriber] = {}
        self._by_uid: dict[str, str] = {}
        self._by_callsign: dict[str, str] = {}
        self._uid_of: dict[str, str] = {}
        self._callsign_of: dict[str, str] = {}
        self._team_of: dict[str, str] = {}
        self._readers: dict[str, dict[str, Subscriber]] = {}
        # Each group's readers as (id, offer, offer_many), made when first asked for after the group
        # changed: the dispatcher iterates a group's readers for every event (without looking up
        # each one's id and offer again), and offering may change the directory.
        self._offers: dict[str, Offers] = {}
        # Told before the receivers change (the dispatcher delivers what it holds back first).
        self._before_change: list[Callable[[], object]] = []
        # Contacts reached through a relay (a federation link): many uids/callsigns per subscriber.
        self._relayed: dict[str, set[tuple[str, str]]] = {}
        # How many subscribers are relays (read-only outside): none on most nodes, so a caller on the
        # per-event path asks is_relay() only when it is not 0.
        self.relays = 0

    def before_change(self, listener: Callable[[], object]) -> None:
        """Call ``listener()`` before every change of the receivers (add, remove, regroup)."""
        self._before_change.append(listener)

    def add(self, sub: Subscriber) -> None:
        """Register a subscriber under its id and its read groups."""
        for listener in self._before_change:
            listener()
        previous = self._by_id.get(sub.id)
        if previous is not None and getattr(previous, "is_relay", False):
            self.relays -= 1
        self._by_id[sub.id] = sub
        if getattr(sub, "is_relay", False):
            self.relays += 1
        for group in sub.read_groups:
            self._readers.setdefault(group, {})[sub.id] = sub
            self._offers.pop(group, None)

    def remove(self, sub_id: str) -> Subscriber | None:
        """Forget a subscriber; returns it if it was known."""
        for listener in self._before_change:
            listener()
        sub = self._by_id.pop(sub_id, None)
        if sub is None:
            return None
        if getattr(sub, "is_relay", False):
            self.relays -= 1
        for group in sub.read_groups:
            self._offers.pop(group, None)
            members = self._readers.get(group)
            if members is not None:
                members.pop(sub_id, None)
                if not members:
                    del self._readers[group]
        for kind, key in self._relayed.pop(sub_id, ()):
            table = self._by_uid if kind == "uid" else self._by_callsign
            if table.get(key) == sub_id:
                del table[key]
        uid = self._uid_of.pop(sub_id, None)
        if uid is not None and self._by_uid.get(uid) == sub_id:
            del self._by_uid[uid]
        callsign = self._callsign_of.pop(sub_id, None)
        if callsign is not None and self._by_callsign.get(callsign) == sub_id:
            del self._by_callsign[callsign]
        self._team_of.pop(sub_id, None)
        return sub

    def regroup(self, sub: Subscriber, old_read_groups: Iterable[str]) -> None:
        """Re-index a subscriber whose read groups changed."""
        for listener in self._before_change:
            listener()
        for group in old_read_groups:
            self._offers.pop(group, None)
            members = self._readers.get(group)
            if members is not None:
                members.pop(sub.id, None)
                if not members:
                    del self._readers[group]
        for group in sub.read_groups:
            self._readers.setdefault(group, {})[sub.id] = sub
            self._offers.pop(group, None)

    def bind(
        self, sub_id: str, *, uid: str | None = None, callsign: str | None = None, team: str | None = None
    ) -> None:
        """Record the uid, callsign and team a subscriber speaks as (from its own SA)."""
        if team is not None:
            self._team_of[sub_id] = team
        if uid is not None and self._uid_of.get(sub_id) != uid:
            old = self._uid_of.get(sub_id)
            if old is not None and self._by_uid.get(old) == sub_id:
                del self._by_uid[old]
            self._uid_of[sub_id] = uid
            self._by_uid[uid] = sub_id
        if callsign is not None and self._callsign_of.get(sub_id) != callsign:
            old = self._callsign_of.get(sub_id)
            if old is not None and self._by_callsign.get(old) == sub_id:
                del self._by_callsign[old]
            self._callsign_of[sub_id] = callsign
            self._by_callsign[callsign] = sub_id

    def bind_relayed(self, sub_id: str, *, uid: str, callsign: str | None) -> None:
        """Record a contact reached through relay ``sub_id`` (a remote client behind a federation link).

        Addressed traffic for that uid or callsign is then routed to the relay, unless a local client
        holds the same uid or callsign (a local client always wins).
        """
        entries = self._relayed.setdefault(sub_id, set())
        if uid not in self._by_uid or self._by_uid[uid] in self._relayed:
            self._by_uid[uid] = sub_id
            entries.add(("uid", uid))
        if callsign is not None and (callsign not in self._by_callsign or self._by_callsign[callsign] in self._relayed):
            self._by_callsign[callsign] = sub_id
            entries.add(("callsign", callsign))

    def is_relay(self, sub_id: str) -> bool:
        """True for subscribers that speak for many remote clients (federation links)."""
        if not self.relays:
            return False
        sub = self._by_id.get(sub_id)
        return bool(getattr(sub, "is_relay", False))

    def get(self, sub_id: str) -> Subscriber | None:
        return self._by_id.get(sub_id)

    def by_uid(self, uid: str) -> Subscriber | None:
        sub_id = self._by_uid.get(uid)
        return None if sub_id is None else self._by_id.get(sub_id)

    def by_callsign(self, callsign: str) -> Subscriber | None:
        sub_id = self._by_callsign.get(callsign)
        return None if sub_id is None else self._by_id.get(sub_id)

    def uid_of(self, sub_id: str) -> str | None:
        return self._uid_of.get(sub_id)

    def speaks_as(self, sub_id: str) -> tuple[str | None, str | None, str | None]:
        """``(uid, callsign, team)`` a subscriber's own SA bound (each None until it sent one)."""
        return self._uid_of.get(sub_id), self._callsign_of.get(sub_id), self._team_of.get(sub_id)

    def callsign_of(self, sub_id: str) -> str | None:
        return self._callsign_of.get(sub_id)

    def team_of(self, sub_id: str) -> str | None:
        """The team (``__group`` name, e.g. ``Cyan``) of a subscriber's own SA, if it sent one."""
        return self._team_of.get(sub_id)

    def readers(self, group: str) -> Iterable[Subscriber]:
        """Subscribers that read ``group`` (a live view: do not mutate the directory while iterating)."""
        members = self._readers.get(group)
        return () if members is None else members.values()

    def offers_now(self, group: str) -> Offers:
        """``(id, offer, offer_many or None)`` of the subscribers that read ``group`` at this moment.

        Safe to iterate while the directory changes (a receiver closed by an offer leaves it).
        """
        readers = self._offers.get(group)
        if readers is None:
            members = self._readers.get(group)
            readers = () if members is None else tuple(
                (sub.id, sub.offer, getattr(sub, "offer_many", None)) for sub in members.values()
            )
            if members is not None:
                self._offers[group] = readers
        return readers

    def count_now(self, group: str, exclude: str | None) -> int:
        """How many subscribers read ``group``, not counting ``exclude``."""
        members = self._readers.get(group)
        if members is None:
            return 0
        return len(members) - (exclude is not None and exclude in members)

    def __iter__(self) -> Iterator[Subscriber]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)


def can_reach(write_groups: frozenset[str], read_groups: frozenset[str]) -> bool:
    """TAK IN/OUT semantics: a sender reaches a receiver when they share a group in that direction."""
    return not write_groups.isdisjoint(read_groups)
