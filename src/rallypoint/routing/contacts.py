"""Who can be reached anywhere in the cluster, by uid, callsign, group and team.

The router asks this index whether an address answers to anyone before it declares it
unresolved (the chat delivery-failure notice, store-and-forward). This node's own sessions are
looked up in its :class:`~rallypoint.routing.directory.Directory`, which is exact (read groups,
relays, the latest claim of a uid). Sessions of other nodes are learned from what crosses the bus:
a device SA binds its sender's uid, callsign and team on its node; the disconnect notice that node
publishes when the session leaves (``t-x-d-d`` linked ``p-p`` to that uid) forgets it. On a node
alone the bus carries only its own publications, so the index is the directory.
"""

from __future__ import annotations

from collections.abc import Iterator

from rallypoint.model.cot import CotEvent, Dest
from rallypoint.model.cot_type import DELETE, is_atom
from rallypoint.routing.directory import Directory, can_reach
from rallypoint.routing.envelope import Envelope


def is_device_sa(event: CotEvent) -> bool:
    """An event describing the sending device itself: an atom with ``<takv>`` or a contact endpoint.

    An atom linked to a parent (``<link relation="p-p">``: a unit placed by a user) never is.
    """
    detail = event.detail
    return (
        is_atom(event.type)
        and (detail.takv or detail.endpoint is not None)
        and detail.link_relation != "p-p"
    )


class RemoteContact:
    """A session of another node, as its device SA described it."""

    __slots__ = ("callsigns", "node", "read_groups", "session_id", "team", "uids")

    def __init__(self, session_id: str, node: str, read_groups: frozenset[str]) -> None:
        self.session_id = session_id
        self.node = node
        self.read_groups = read_groups
        self.team: str | None = None
        self.uids: set[str] = set()
        self.callsigns: set[str] = set()


class ContactIndex:
    """Cluster-wide reachability: this node's directory plus the contacts other nodes announced.

    A bus subscriber (:meth:`observe`) on every node; only publications of other nodes change it.
    """

    def __init__(self, directory: Directory, node: str = "") -> None:
        self._directory = directory
        self.node = node
        self._sessions: dict[str, RemoteContact] = {}
        self._by_uid: dict[str, str] = {}
        self._by_callsign: dict[str, str] = {}

    # --- bus subscriber -----------------------------------------------------------------------
    def observe(self, envelope: Envelope, audience: object = None) -> None:
        """Learn or forget a remote session from a publication of another node."""
        origin = envelope.origin
        event = envelope.event
        if event.type == DELETE:
            # Checked whatever node published it: a node announces the departure of a dead
            # node's clients on its behalf (services/node_watch.py); only remote sessions are here.
            contact = self._sessions.get(origin.session_id)
            if contact is not None and event.detail.link_relation == "p-p" and event.detail.link_uid in contact.uids:
                self._forget(contact)
            return
        if not origin.node or origin.node == self.node:
            return
        if not is_device_sa(event) or event.detail.dests:
            return
        contact = self._sessions.get(origin.session_id)
        read_groups = origin.read_groups if origin.read_groups is not None else origin.groups
        if contact is None:
            contact = self._sessions[origin.session_id] = RemoteContact(origin.session_id, origin.node, read_groups)
        contact.read_groups = read_groups
        self._claim(self._by_uid, contact.uids, event.uid, contact.session_id)
        callsign = event.detail.callsign
        if callsign is not None:
            self._claim(self._by_callsign, contact.callsigns, callsign, contact.session_id)
        if event.detail.group_name is not None:
            contact.team = event.detail.group_name

    def forget_node(self, node: str) -> int:
        """Forget every contact of ``node`` (it left the cluster); returns how many."""
        gone = [c for c in self._sessions.values() if c.node == node]
        for contact in gone:
            self._forget(contact)
        return len(gone)

    # --- questions the router asks ------------------------------------------------------------
    def reachable(self, dest: Dest, groups: frozenset[str], sender: str) -> bool:
        """Whether ``dest`` answers to a receiver other than ``sender`` that ``groups`` may reach."""
        directory = self._directory
        if dest.callsign is not None:
            sub = directory.by_callsign(dest.callsign)
            if sub is not None and sub.id != sender and can_reach(groups, sub.read_groups):
                return True
            if self._remote_reaches(self._by_callsign.get(dest.callsign), groups, sender):
                return True
        if dest.uid is not None:
            sub = directory.by_uid(dest.uid)
            if sub is not None and sub.id != sender and can_reach(groups, sub.read_groups):
                return True
            if self._remote_reaches(self._by_uid.get(dest.uid), groups, sender):
                return True
        if dest.group is not None:
            for sub in directory.readers(dest.group):
                if sub.id != sender and can_reach(groups, sub.read_groups):
                    return True
            return any(
                dest.group in c.read_groups and c.session_id != sender and can_reach(groups, c.read_groups)
                for c in self._sessions.values()
            )
        return False

    def team_reachable(self, team: str, groups: frozenset[str], sender: str) -> bool:
        """Whether a team chat from ``groups`` reaches anyone: a team member or a relay."""
        directory = self._directory
        for group in groups:
            for sub in directory.readers(group):
                if sub.id != sender and (directory.team_of(sub.id) == team or directory.is_relay(sub.id)):
                    return True
        return any(
            c.team == team and c.session_id != sender and can_reach(groups, c.read_groups)
            for c in self._sessions.values()
        )

    def remote(self) -> Iterator[RemoteContact]:
        """The contacts of other nodes known now."""
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    # --- internals ----------------------------------------------------------------------------
    def _remote_reaches(self, session_id: str | None, groups: frozenset[str], sender: str) -> bool:
        if session_id is None or session_id == sender:
            return False
        contact = self._sessions.get(session_id)
        return contact is not None and can_reach(groups, contact.read_groups)

    def _claim(self, table: dict[str, str], owned: set[str], key: str, session_id: str) -> None:
        # The latest session to claim a uid or callsign has it (a client that reconnected elsewhere).
        previous = table.get(key)
        if previous is not None and previous != session_id:
            other = self._sessions.get(previous)
            if other is not None:
                other.uids.discard(key)
                other.callsigns.discard(key)
        table[key] = session_id
        owned.add(key)

    def _forget(self, contact: RemoteContact) -> None:
        self._sessions.pop(contact.session_id, None)
        for uid in contact.uids:
            if self._by_uid.get(uid) == contact.session_id:
                del self._by_uid[uid]
        for callsign in contact.callsigns:
            if self._by_callsign.get(callsign) == contact.session_id:
                del self._by_callsign[callsign]
