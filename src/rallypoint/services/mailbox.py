"""Store-and-forward: addressed traffic for a receiver that is offline waits for it, durably.

What is kept
    Explicitly addressed events (``marti/dest`` or chat members) that :func:`is_storable` accepts:
    chat and receipts, tasks and mission changes (``t-*`` but not control messages or pings),
    markers and designations. Never positions/SA, pings, control messages or emergencies.
    Also the server's own addressed mission notices (:meth:`Mailbox.keep_notice`; which ones:
    docs/delivery.md, "What is kept").

For whom
    A receiving *identity* is ``principal:<name>`` when the client has a certificate (known when it
    connects), else ``uid:<uid>`` bound by its first self-SA. A durable registry remembers every
    identity's uid, callsign, principal, read groups and last-seen time (updated on connect, on
    SA binding and on disconnect). An address is kept for:

    * a uid or callsign address in ``Audience.unresolved`` (it matched no connected, reachable
      receiver): the identity that last claimed that uid or callsign;
    * a ``dest@group`` address: every known *principal* identity that last read that group and is
      not connected now, to this node or (as far as the SA seen on the bus tell) to another one
      reading that group (anonymous clients are left out: before their first SA they are already
      live readers of their group, so keeping mail for them would deliver it twice).

    Reachability uses the recipient's last known read groups and is checked again, with its current
    groups, at delivery: an audience is never widened. The sender never gets its own mail. If the
    identity is in fact connected (a certificate client that has not sent its SA yet, so routing
    could not find its uid), the event is offered to its sessions at once instead of being kept.

Delivery
    When an identity becomes known on a session (``SessionHub`` join source for principals, so the
    mail comes before the picture snapshot; ``Presence`` bind listener for anonymous clients, right
    after their first SA, so after their snapshot), its pending mail is offered in ``seq`` order,
    re-parsed from the stored XML, at least in the MESSAGE class (never coalesced or thinned). A
    message is delivered once per identity, to the first of its sessions that appears, and counts as
    delivered once that session wrote it; mail not written when the session goes returns to the box
    (:mod:`rallypoint.services.mailbox_inflight`).

Several nodes
    With a node id, only the node a message entered keeps it, and its cursors are the only ones for
    that mail; it is handed to the recipient's session on whichever node its SA comes from
    (:mod:`rallypoint.services.mailbox_cluster`; docs/delivery.md, "Several nodes").

Expiry
    ``expires_ms = min(event stale, created + ttl)`` (ttl 24 h by default).

Durability
    The store (``<data_dir>/mailbox.db``, or the node's rows in PostgreSQL) is a
    :class:`~rallypoint.storage.base.mailbox.MailboxRecords`. Its state is loaded synchronously
    when the service is built (before any client can connect); the memory copy is the one delivery
    reads, and changes are written in batches (:mod:`rallypoint.services.mailbox_writer`).

Bounds and overflow
    New mail beyond the write queue or an identity's box is refused and counted
    (:mod:`rallypoint.services.mailbox_keep`). The registry keeps at most ``max_identities``
    identities; the one seen longest ago is forgotten with its mail.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import msgspec
from starlette.routing import BaseRoute

from rallypoint.clock import Clock
from rallypoint.delivery.dispatcher import Dispatcher, resolve
from rallypoint.protocol.limits import Limits
from rallypoint.routing.directory import Directory, Subscriber, can_reach
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience, to_sessions
from rallypoint.services.mailbox_cluster import ClusterMail
from rallypoint.services.mailbox_inflight import Handover
from rallypoint.services.mailbox_keep import MailKeeper
from rallypoint.services.mailbox_metrics import mailbox_counters, mailbox_gauges
from rallypoint.services.mailbox_registry import RecipientRegistry, is_storable, principal_identity, uid_identity
from rallypoint.services.mailbox_sessions import ConnectedIdentities
from rallypoint.services.mailbox_writer import MailboxWriter
from rallypoint.storage.base.mailbox import MailboxRecords, MailRecord, RecipientRecord

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 24 * 3600.0
MAILBOX_ORIGIN_ID = "mailbox"


class Mailbox:
    """Keeps addressed events for offline receivers and hands them over when they come back."""

    def __init__(
        self,
        store: MailboxRecords,
        *,
        directory: Directory,
        clock: Clock,
        ttl_s: float = DEFAULT_TTL_S,
        limits: Limits | None = None,
        max_queue: int = 10_000,
        max_per_identity: int = 1_000,
        max_identities: int = 10_000,
        node: str | None = None,
    ) -> None:
        self._store = store
        # With a node id, mail is kept by the node the message entered only (None: every publication).
        self._node = node
        self._directory = directory
        self._clock = clock
        self._ttl_ms = int(ttl_s * 1000)
        self._limits = limits or Limits()
        state = store.load_state(clock.now_ms())
        self._boxes: dict[str, deque[MailRecord]] = {k: deque(v) for k, v in state.pending.items()}
        self._cursors: dict[str, int] = dict(state.cursors)
        self._registry = RecipientRegistry(state.recipients, max_size=max_identities)
        self._online = ConnectedIdentities()
        self._writer = MailboxWriter(store, clock)
        self._keeper = MailKeeper(
            self._boxes, self._writer, next_seq=state.next_seq, max_queue=max_queue, max_per_identity=max_per_identity
        )
        self._handover = Handover(
            self._boxes,
            self._cursors,
            writer=self._writer,
            registry=self._registry,
            clock=clock,
            limits=self._limits,
            origin_id=MAILBOX_ORIGIN_ID,
        )
        # Mail and notices are handed over as bus publications to session ids (Ingest.deliver);
        # without a bus (the mailbox tested alone) they are delivered on this node.
        self._publish: Callable[[Envelope, Audience], object] = Dispatcher(directory).deliver
        self._cluster = ClusterMail(
            node=node or "",
            directory=directory,
            clock=clock,
            handover=self._handover,
            boxes=self._boxes,
            online=self._online,
            remember=self._remember,
            publish=self._publish,
            ttl_ms=self._ttl_ms,
            seen=state.seen,
            keep_seen=self._writer.add_seen,
        )

    def deliver_through(self, publish: Callable[[Envelope, Audience], object]) -> None:
        """Hand mail over with ``publish`` (the node's bus, for delivery only)."""
        self._publish = publish
        self._cluster.deliver_through(publish)

    # --- Feature ------------------------------------------------------------------------------
    @property
    def routes(self) -> Sequence[BaseRoute]:
        """No HTTP routes."""
        return ()

    async def run(self) -> None:
        """Purge expired and delivered rows once at start; writes then run in on-demand tasks."""
        removed = await self._store.purge(self._clock.now_ms())
        if removed:
            log.info("mailbox purged", extra={"messages": removed})

    async def close(self) -> None:
        """Write everything still queued, then close the file."""
        await self._writer.close()
        await self._store.close()

    async def flush(self) -> None:
        """Wait until every queued change is written."""
        await self._writer.flush()

    @property
    def write_errors(self) -> int:
        """Batches that failed to be written."""
        return self._writer.write_errors

    # --- ingest hook --------------------------------------------------------------------------
    def observe(self, envelope: Envelope, audience: Audience) -> bool:
        """Keep an accepted, explicitly addressed event for those of its recipients that are offline.

        Returns True when someone will receive it (kept for later, or delivered live to a client
        that is connected but not yet identified).
        """
        event = envelope.event
        origin = envelope.origin
        if self._node is not None and origin.node and origin.node != self._node:
            # Kept once, by the node it entered; another node's client SA says the recipient is back.
            self._cluster.observe(envelope, audience)
            return False
        if not audience.explicit or envelope.repeat or not is_storable(event):
            return False
        now = self._clock.now_ms()
        expires = min(event.stale, now + self._ttl_ms)
        sender = self._sender_identity(origin)
        live: dict[str, None] = {}
        kept: dict[str, None] = {}
        for dest in audience.unresolved:
            if dest.uid is None and dest.callsign is None:
                continue
            for identity in self._registry.by_address(dest.uid, dest.callsign):
                (live if identity in self._online.sessions else kept)[identity] = None
        for dest in event.detail.dests:
            if dest.group is None or dest.mission is not None:
                continue
            for identity in self._registry.readers(dest.group):
                record = self._registry.get(identity)
                if (
                    record is not None
                    and record.principal is not None
                    and identity not in self._online.sessions
                    and not self._cluster.reads_elsewhere(identity, dest.group, origin.groups)
                ):
                    kept[identity] = None
        live.pop(sender or "", None)
        kept.pop(sender or "", None)
        for identity in live:
            self._offer_live(identity, envelope, audience)
        recipients = tuple(i for i in kept if self._may_read(i, origin.groups))
        if not recipients:
            return bool(live)
        return self._keeper.keep(envelope, recipients, now=now, expires=expires)

    # --- server-made notices ------------------------------------------------------------------
    def keep_notice(
        self,
        envelope: Envelope,
        *,
        reached: Iterable[str] = (),
        principals: Iterable[str] = (),
        uids: Iterable[str] = (),
        callsigns: Iterable[str] = (),
        groups: Iterable[str] = (),
    ) -> int:
        """Keep a server-made notice (a mission change, an invitation) for addressees that are offline.

        An addressee is a principal, a client uid or callsign (the identity that last claimed it) or
        a group (every known principal identity that last read it). ``reached`` are the sessions that
        got the notice live; a connected identity none of whose sessions was reached (a certificate
        client that has not sent its SA yet) gets it now. The notice lives for the mailbox TTL, not
        for its own short stale time, and only identities that may read ``envelope.origin.groups``
        keep it. Returns how many identities keep it.
        """
        found = self._registry.resolve(principals=principals, uids=uids, callsigns=callsigns, groups=groups)
        reached_ids = set(reached)
        kept: list[str] = []
        for identity in found:
            sessions = self._online.sessions.get(identity)
            if sessions is None:
                if self._may_read(identity, envelope.origin.groups):
                    kept.append(identity)
            elif reached_ids.isdisjoint(sessions):
                ids = [sub.id for sub in sessions.values() if can_reach(envelope.origin.groups, sub.read_groups)]
                if ids:
                    self._publish(envelope, to_sessions(*ids))
        if not kept:
            return 0
        now = self._clock.now_ms()
        expires = now + self._ttl_ms
        # A client ignores a stale notice: the stored copy is valid for as long as it is kept.
        event = msgspec.structs.replace(envelope.event, stale=expires, raw=None)
        stored = Envelope(event, envelope.origin, now, priority=envelope.priority)
        return len(kept) if self._keeper.keep(stored, tuple(kept), now=now, expires=expires) else 0

    # --- session hooks ------------------------------------------------------------------------
    def on_join(self, sub: Subscriber) -> Iterable[Envelope]:
        """``SessionHub`` join source: a certificate client's pending mail, before its snapshot."""
        principal = getattr(sub, "principal", None)
        if not isinstance(principal, str) or not principal:
            return ()
        identity = principal_identity(principal)
        self._online.attach(identity, sub)
        self._remember(identity, sub, principal=principal)
        return self._handover.take(identity, sub)

    def on_bind(self, session_id: str, uid: str | None, callsign: str | None) -> None:
        """``Presence`` bind listener: a session spoke as ``uid``/``callsign``; deliver if newly known."""
        sub = self._directory.get(session_id)
        if sub is None:
            return
        principal = getattr(sub, "principal", None)
        uid = uid or self._directory.uid_of(session_id)
        callsign = callsign or self._directory.callsign_of(session_id)
        if isinstance(principal, str) and principal:
            identity = principal_identity(principal)
        elif uid is not None:
            identity = uid_identity(uid)
        else:
            return
        self._online.attach(identity, sub)
        self._remember(
            identity, sub, principal=principal if isinstance(principal, str) else None, uid=uid, callsign=callsign
        )
        self._hand_over(sub, self._handover.take(identity, sub))

    def on_leave(self, sub: Subscriber) -> None:
        """``SessionHub`` leave listener: the session is gone; its identity is offline if it was the last."""
        identity = self._online.detach(sub.id)
        if identity is None:
            return
        record = self._registry.get(identity)
        if record is not None:
            self._put_record(msgspec.structs.replace(record, last_seen_ms=self._clock.now_ms()))
        self._cluster.left(sub.id)
        self._handover.give_back(sub.id, self._online.sessions, self._hand_over)

    # --- bus subscriber ------------------------------------------------------------------------
    def on_bus(self, envelope: Envelope, audience: Audience) -> None:
        """Kept mail of another node for a session here, and reports on mail handed to other nodes."""
        self._cluster.on_bus(envelope, audience)

    # --- metrics ------------------------------------------------------------------------------
    def statistics(self) -> dict[str, int]:
        """Counters and sizes (``pending`` counts one per message and recipient)."""
        handover = self._handover
        return {
            "pending": sum(len(box) for box in self._boxes.values()),
            "write_queue": self._writer.pending_mail,
            "unwritten": self._writer.unwritten,
            "identities": len(self._registry),
            "queued": self._keeper.queued,
            "delivered": handover.delivered,
            "expired": self._keeper.expired + handover.expired,
            "overflow": self._keeper.overflow,
            "unreachable": handover.unreachable,
            "in_flight": handover.in_flight,
            "returned": handover.returned,
            "remote_duplicates": self._cluster.remote.duplicates,
            "malformed_reports": self._cluster.remote.malformed,
            "write_errors": self.write_errors,
        }

    def gauges(self) -> list[tuple[str, str, float]]:
        """For ``ServerMetrics.add_gauges``."""
        return mailbox_gauges(self.statistics())

    def counters(self) -> list[tuple[str, str, float]]:
        """For ``ServerMetrics.add_counters``."""
        return mailbox_counters(self.statistics())

    # --- internals ----------------------------------------------------------------------------
    def _sender_identity(self, origin: Origin) -> str | None:
        if origin.principal:
            return principal_identity(origin.principal)
        return self._online.identity_of(origin.session_id)

    def _may_read(self, identity: str, groups: frozenset[str]) -> bool:
        record = self._registry.get(identity)
        return record is not None and can_reach(groups, record.read_groups)

    def _offer_live(self, identity: str, envelope: Envelope, audience: Audience) -> None:
        reached = {sub.id for sub in resolve(self._directory, envelope, audience)}
        ids = [
            sub.id
            for sub in self._online.sessions.get(identity, {}).values()
            if sub.id not in reached
            and sub.id != envelope.origin.session_id
            and can_reach(envelope.origin.groups, sub.read_groups)
        ]
        if ids:
            self._publish(envelope, to_sessions(*ids))

    def _hand_over(self, sub: Subscriber, envelopes: Iterable[Envelope]) -> None:
        """Kept mail to one session (of this node or another), in order."""
        self._cluster.hand_over(sub, envelopes)

    def _remember(
        self,
        identity: str,
        sub: Subscriber,
        *,
        principal: str | None,
        uid: str | None = None,
        callsign: str | None = None,
    ) -> None:
        old = self._registry.get(identity)
        if old is not None:
            uid = uid or old.uid
            callsign = callsign or old.callsign
            if (old.uid, old.callsign, old.read_groups) == (uid, callsign, sub.read_groups):
                return
        record = RecipientRecord(
            identity=identity,
            uid=uid,
            callsign=callsign,
            principal=principal,
            read_groups=sub.read_groups,
            last_seen_ms=self._clock.now_ms(),
        )
        self._put_record(record)

    def _put_record(self, record: RecipientRecord) -> None:
        forgotten = list(self._registry.update(record))
        for gone in forgotten:
            self._boxes.pop(gone, None)
            self._cursors.pop(gone, None)
            self._handover.forget(gone)
        self._writer.put_record(record, forgotten)
