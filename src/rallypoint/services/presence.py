"""Latest state: each client's own SA, persisted map items, and what a newly connected client sees."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from rallypoint.model.cot_type import DELETE, is_atom, is_persistent_item
from rallypoint.routing.directory import Directory, Subscriber, can_reach
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.security.policy import Claim, is_device_sa

log = logging.getLogger(__name__)
# Read once: an enum member lookup costs about 0.1 us on Python 3.11; ``bind`` runs per event.
_DEVICE, _ITEM = Claim.DEVICE, Claim.ITEM


def may_change(sender: Origin, holder: Origin) -> bool:
    """Whether ``sender`` may delete, replace or cancel what ``holder`` put in the picture.

    Only a sender sharing one of the holder's groups may: a client that cannot even see an item
    (another group, or anonymous) must not remove it from the picture of those who can. The
    holder itself always may, even after its groups changed.
    """
    if sender.session_id == holder.session_id:
        return True
    if sender.principal is not None and sender.principal == holder.principal:
        return True
    return not sender.groups.isdisjoint(holder.groups)


class Presence:
    """The live picture held in memory.

    * ``sa``: the latest own-SA of every connected client, keyed by uid; removed when it disconnects.
    * ``items``: markers, shapes, routes, casevac and atoms that are not a client's own SA (tracks
      from feeds, hand-placed units); kept until stale or deleted, and reloaded from storage at start.

    Which event is a client's own SA is decided by identity binding (``security/policy.py``): only a
    device SA (``<takv>`` or a contact endpoint) binds a session's uid. Markers a client drops and
    units a gateway relays are items: they stay in the picture when their sender disconnects.
    """

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self.sa: dict[str, Envelope] = {}
        self.items: dict[str, Envelope] = {}
        # Deletes and replacements refused because the sender shares no group with the item.
        self.refused = 0
        self._bind_listeners: list[Callable[[str, str | None, str | None], object]] = []

    def add_bind_listener(self, listener: Callable[[str, str | None, str | None], object]) -> None:
        """Call ``listener(session_id, uid, callsign)`` when a session binds its uid or changes callsign."""
        self._bind_listeners.append(listener)

    def bind(self, envelope: Envelope, claim: Claim = Claim.ITEM) -> None:
        """Record in this node's directory whom a local session speaks as (the origin node only).

        ``claim`` is what identity binding decided the event is to its session. A device SA binds
        the session's uid, callsign and team; a relay's (federation link's) or gateway's relayed
        contacts are bound to it so addressed traffic for them goes there. Only the node the
        session is connected to can do this, so it runs in ``Ingest.accept``, before publication.
        """
        event = envelope.event
        if event.type == DELETE:
            return
        uid = event.uid
        session_id = envelope.origin.session_id
        directory = self._directory
        if directory.relays and directory.is_relay(session_id):
            if is_atom(event.type) and event.detail.callsign is not None and event.detail.link_relation != "p-p":
                directory.bind_relayed(session_id, uid=uid, callsign=event.detail.callsign)
            return
        if claim is _ITEM:
            return
        own_uid, own_callsign, own_team = directory.speaks_as(session_id)
        if claim is _DEVICE and own_uid == uid:
            team = event.detail.group_name
            if team is not None and own_team != team:
                directory.bind(session_id, team=team)
            callsign = event.detail.callsign
            if callsign is not None and own_callsign != callsign:
                directory.bind(session_id, callsign=callsign)
                for listener in self._bind_listeners:
                    listener(session_id, None, callsign)
        elif claim is _DEVICE and own_uid is None and directory.get(session_id) is not None:
            directory.bind(session_id, uid=uid, callsign=event.detail.callsign, team=event.detail.group_name)
            for listener in self._bind_listeners:
                listener(session_id, uid, event.detail.callsign)
        elif claim is Claim.RELAYED and directory.get(session_id) is not None:
            # Addressed traffic for a relayed device (chat to a mesh contact) goes to its gateway.
            directory.bind_relayed(session_id, uid=uid, callsign=event.detail.callsign)

    def observe(self, envelope: Envelope) -> bool:
        """Update the picture with a published event (a bus subscriber, on every node).

        A local session's own device SA (bound by :meth:`bind` at the origin) is its SA; anything
        else that belongs in the picture is an item, including the SA of clients connected to
        other nodes (their node's disconnect notice removes them). Returns True when the event
        entered the picture: the stored row says so, and only such rows are reloaded at start
        (``storage.base``).
        """
        event = envelope.event
        uid = event.uid
        session_id = envelope.origin.session_id
        if event.type == DELETE:
            target = event.detail.link_uid
            if target is None:
                return False
            if self.may_delete(envelope):
                self.items.pop(target, None)
            else:
                self.refused += 1
                log.warning("delete from outside the item's groups ignored",
                            extra={"uid": target, "session": envelope.origin.session_id})
            return False
        directory = self._directory
        if directory.relays and directory.is_relay(session_id):
            # A federation link relays many remote clients: their SA are items of the picture.
            if (is_persistent_item(event.type) or is_atom(event.type)) and not event.detail.dests:
                self.items[uid] = envelope
                return True
            return False
        if directory.uid_of(session_id) == uid and is_device_sa(event):
            self.sa[uid] = envelope
            # The device's own report supersedes any copy of it a gateway relayed earlier.
            self.items.pop(uid, None)
            return True
        # Addressed items went to chosen receivers only; replaying them would widen their audience.
        if (is_persistent_item(event.type) or is_atom(event.type)) and not event.detail.dests:
            held = self.items.get(uid)
            if held is None or may_change(envelope.origin, held.origin):
                self.items[uid] = envelope
                return True
            self.refused += 1
        return False

    def may_delete(self, envelope: Envelope) -> bool:
        """Whether a ``t-x-d-d`` may remove its target (unknown targets: nothing to protect)."""
        target = envelope.event.detail.link_uid
        held = None if target is None else self.items.get(target)
        return held is None or may_change(envelope.origin, held.origin)

    def disown(self, uid: str, holder: str) -> list[str]:
        """Drop what principals other than ``holder`` put in the picture under ``uid`` (a lost uid claim).

        Returns the local sessions whose own SA was dropped: they spoke for a uid the cluster gave to
        another principal. With their SA gone, closing them publishes no disconnect notice that would
        remove the holder's report from the picture.
        """
        losers: list[str] = []
        sa = self.sa.get(uid)
        if sa is not None and sa.origin.principal != holder:
            del self.sa[uid]
            losers.append(sa.origin.session_id)
        item = self.items.get(uid)
        if item is not None and item.origin.principal is not None and item.origin.principal != holder:
            del self.items[uid]
        return losers

    def own_sa(self, session_id: str) -> Envelope | None:
        """The latest own SA of a connected session, if it has identified itself."""
        uid = self._directory.uid_of(session_id)
        return None if uid is None else self.sa.get(uid)

    def forget_session(self, session_id: str) -> Envelope | None:
        """Drop a departed session's SA (call before removing it from the directory).

        Returns the SA so a disconnect notice can be built.
        """
        uid = self._directory.uid_of(session_id)
        if uid is None:
            return None
        current = self.sa.get(uid)
        # A reconnecting client may already own this uid through a newer session.
        if current is None or current.origin.session_id != session_id:
            return None
        return self.sa.pop(uid)

    def snapshot_for(self, sub: Subscriber, now_ms: int) -> Iterator[Envelope]:
        """Non-stale SA and items the subscriber may read, oldest report first."""
        for table in (self.sa, self.items):
            for envelope in list(table.values()):
                if envelope.event.stale <= now_ms:
                    continue
                if envelope.origin.session_id == sub.id:
                    continue
                if can_reach(envelope.origin.groups, sub.read_groups):
                    yield envelope

    def expire(self, now_ms: int) -> int:
        """Remove stale items (not SA of connected clients: they are removed on disconnect)."""
        stale = [uid for uid, env in self.items.items() if env.event.stale <= now_ms]
        for uid in stale:
            del self.items[uid]
        return len(stale)
