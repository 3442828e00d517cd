"""Store-and-forward across nodes: what the mailbox of one node does with the publications of others.

As the *holding* node (the one a message entered, which keeps it): other nodes' clients are learned
from their SA on the bus (:class:`PeerSessions`, forgotten at their departure notice, which is also
published for the clients of a dead node); when one of them is an identity with mail here, the mail
is handed to its session at once, tagged for its node (:mod:`rallypoint.services.mailbox_remote`);
that node's written report retires a message, a not-written report or the session's departure puts
it back in the box. The peer sessions also tell the keep decision whether a principal is connected
elsewhere in the cluster, reading a group (:meth:`ClusterMail.reads_elsewhere`).

As the *delivering* node: mail of other nodes tagged for a session here is offered to it and
reported, and addressed messages of other nodes that reached an identity here live are remembered
(durably, as seen rows) so that the same message handed over later is not written twice. A live
delivery to a certificate client that has sent no SA here is also reported to the message's
holder, which cannot know that client is connected and may have kept the message for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from rallypoint.clock import Clock
from rallypoint.delivery.dispatcher import resolve
from rallypoint.model.cot_type import DELETE
from rallypoint.routing.directory import Directory, Subscriber, can_reach
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience, to_sessions
from rallypoint.services.mailbox_inflight import Handover
from rallypoint.services.mailbox_registry import PRINCIPAL_PREFIX, is_storable, principal_identity, uid_identity
from rallypoint.services.mailbox_remote import RemoteMail, RemoteSession
from rallypoint.services.mailbox_sessions import ConnectedIdentities
from rallypoint.storage.base.mailbox import MailRecord, SeenRecord


class Remember(Protocol):
    """The mailbox's registry update for an identity seen on a session."""

    def __call__(
        self,
        identity: str,
        sub: Subscriber,
        *,
        principal: str | None,
        uid: str | None = None,
        callsign: str | None = None,
    ) -> None: ...


class PeerSessions:
    """Sessions of other nodes by identity, from their SA on the bus; forgotten at their departure notice."""

    def __init__(self) -> None:
        # session id -> (identity, the session, the uids it spoke as)
        self._sessions: dict[str, tuple[str, RemoteSession, set[str]]] = {}
        self._of_identity: dict[str, dict[str, RemoteSession]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def seen(self, identity: str, session: RemoteSession, uid: str) -> None:
        """``session`` (of another node) spoke as ``uid`` for ``identity``."""
        known = self._sessions.get(session.id)
        uids = {uid}
        if known is not None:
            old_identity, _, uids = known
            uids.add(uid)
            if old_identity != identity:
                self._drop(old_identity, session.id)
        self._sessions[session.id] = (identity, session, uids)
        self._of_identity.setdefault(identity, {})[session.id] = session

    def departed(self, session_id: str, uid: str | None) -> bool:
        """A departure notice for ``uid`` of ``session_id``: True when it was a known peer session."""
        known = self._sessions.get(session_id)
        if known is None or uid not in known[2]:
            return False
        del self._sessions[session_id]
        self._drop(known[0], session_id)
        return True

    def sessions(self, identity: str) -> Iterable[RemoteSession]:
        """The sessions of other nodes that speak for ``identity`` now."""
        return tuple(self._of_identity.get(identity, {}).values())

    def _drop(self, identity: str, session_id: str) -> None:
        sessions = self._of_identity.get(identity)
        if sessions is not None:
            sessions.pop(session_id, None)
            if not sessions:
                del self._of_identity[identity]


class ClusterMail:
    """The mailbox's side of the bus: hands kept mail to other nodes and takes their mail for sessions here."""

    def __init__(
        self,
        *,
        node: str,
        directory: Directory,
        clock: Clock,
        handover: Handover,
        boxes: dict[str, deque[MailRecord]],
        online: ConnectedIdentities,
        remember: Remember,
        publish: Callable[[Envelope, Audience], object],
        ttl_ms: int,
        seen: Iterable[SeenRecord] = (),
        keep_seen: Callable[[SeenRecord], None] | None = None,
    ) -> None:
        self._node = node
        self._directory = directory
        self._handover = handover
        self._boxes = boxes
        self._online = online
        self._remember = remember
        self._publish = publish
        self.peers = PeerSessions()
        self.remote = RemoteMail(
            directory, clock, node=node, publish=publish, ttl_ms=ttl_ms, seen=seen, keep_seen=keep_seen
        )

    def deliver_through(self, publish: Callable[[Envelope, Audience], object]) -> None:
        """Hand mail over and publish reports with ``publish`` (the node's bus, for delivery only)."""
        self._publish = publish
        self.remote.deliver_through(publish)

    # --- publications of other nodes ------------------------------------------------------------
    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """A publication that entered another node: an SA, a departure, or addressed mail delivered here live."""
        event = envelope.event
        if event.detail.takv and not envelope.repeat:
            self._seen_on_other_node(envelope)
        elif event.type == DELETE:
            if event.detail.link_relation == "p-p" and self.peers.departed(
                envelope.origin.session_id, event.detail.link_uid
            ):
                # A session of another node left (or its node died): its unwritten mail is ours again.
                self._handover.give_back(envelope.origin.session_id, self._online.sessions, self.hand_over)
        elif audience.explicit and not envelope.repeat and is_storable(event):
            self._note_live(envelope, audience)

    def on_bus(self, envelope: Envelope, audience: Audience) -> None:
        """Kept mail of another node for a session here, and reports on mail handed to other nodes."""
        origin = envelope.origin
        if not audience.delivery_only or not origin.node or origin.node == self._node:
            return
        report = self.remote.receive(envelope)
        if report is None:
            return
        if report.uid is not None:
            self._handover.confirm_seen(report.identity, (report.uid, report.time))
        elif report.written:
            self._handover.confirm(report.identity, report.seq)
        else:
            self._handover.give_back_one(
                report.identity, report.seq, report.session, self._online.sessions, self.hand_over
            )

    # --- questions and hand-overs of the mailbox ------------------------------------------------
    def reads_elsewhere(self, identity: str, group: str, groups: frozenset[str]) -> bool:
        """Whether ``identity`` has a session on another node that reads ``group`` and ``groups`` reach.

        Such a session gets a ``dest@group`` message live from its own node's dispatcher.
        """
        return any(group in s.read_groups and can_reach(groups, s.read_groups) for s in self.peers.sessions(identity))

    def hand_over(self, sub: Subscriber, envelopes: Iterable[Envelope]) -> None:
        """Kept mail to one session, in order: tagged for another node's session, else published to it."""
        if isinstance(sub, RemoteSession):
            self.remote.hand_over(sub, envelopes)
            return
        for envelope in envelopes:
            self._publish(envelope, to_sessions(sub.id))

    def left(self, session_id: str) -> None:
        """A local session left: mail of other nodes it had not written goes back to its holders."""
        self.remote.left(session_id)

    # --- internals ------------------------------------------------------------------------------
    def _seen_on_other_node(self, envelope: Envelope) -> None:
        """A client of another node sent its SA: remember it, and hand it the mail kept here.

        The mail is in flight until that node reports it written (delivered) or not (back in the box).
        """
        origin = envelope.origin
        uid = envelope.event.uid
        identity = principal_identity(origin.principal) if origin.principal else uid_identity(uid)
        session = RemoteSession(origin.session_id, origin.read_groups or origin.groups, origin.groups, origin.node)
        self.peers.seen(identity, session, uid)
        self._remember(identity, session, principal=origin.principal, uid=uid, callsign=envelope.event.detail.callsign)
        if self._boxes.get(identity):
            self.hand_over(session, self._handover.take(identity, session))

    def _note_live(self, envelope: Envelope, audience: Audience) -> None:
        """Addressed mail of another node reached local sessions live: its holder may hand it over too.

        A certificate client that has sent no SA here is invisible to the holder, which may have
        kept the message for it: the holder is told, so that it retires its copy at once.
        """
        for sub in resolve(self._directory, envelope, audience):
            identity = self._online.identity_of(sub.id)
            if identity is None:
                continue
            self.remote.saw(identity, envelope.event)
            if identity.startswith(PRINCIPAL_PREFIX) and self._directory.uid_of(sub.id) is None:
                self.remote.report_live(envelope.origin.node, sub.id, identity, envelope.event)
