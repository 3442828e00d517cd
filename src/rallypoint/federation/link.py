"""One federated peer: a Subscriber for the router, a queue that survives partitions and restarts.

Delivery guarantees (docs/federation.md):

* Priority messages (``Priority.EMERGENCY`` and ``Priority.MESSAGE``) go to one of two durable lanes
  (``federation/lanes.py``), each its own sequence, written to SQLite before they are sent and
  re-sent from the oldest unacknowledged one after every reconnect, urgent lane first. The receiver
  records the highest sequence accepted per origin lane and queue epoch, so Rallypoint to Rallypoint
  is exactly-once, also after a node lost its queue file and numbers from 1 again, or restored an
  older one (each lane checks the peer's mark before it sends, ``federation/queue_check.py``).
* Positions and other bulk traffic are coalesced to the latest report per uid, in memory and in
  SQLite (``federation/positions.py``), and replayed after a reconnect or a restart; the receiver
  drops reports it already accepted (``federation/dedup.py``), also when they came by two paths.
* Writes are batched off the ingest path (``federation/persister.py``); ``unwritten`` counts what
  is accepted but not yet on disk (what a ``kill -9`` can lose); :meth:`PeerLink.close` writes it all.
* A delete (``t-x-d-d`` linking uid X) removes X's latest position and any message of X still queued
  in the message lane: the delete overtakes them, and the peer would re-create X from what followed.
* Under a link budget every message is paid from a byte token bucket; positions are thinned
  (``federation/link_budget.py``), priority messages deferred, never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Callable
from functools import partial

from rallypoint.clock import Clock
from rallypoint.config import FederationPeer
from rallypoint.delivery.budget import LinkBudget, ThinningPolicy
from rallypoint.federation import inbound, persister, queue_check
from rallypoint.federation.convert import ack_event, flow_hops, has_flow_tag, to_federated
from rallypoint.federation.dedup import RecentReports
from rallypoint.federation.lanes import MESSAGE, URGENT, DurableLane, lane_tag
from rallypoint.federation.link_budget import next_within_budget
from rallypoint.federation.order import SameTimeOrder
from rallypoint.federation.positions import PositionJournal
from rallypoint.model.cot_type import DELETE, Priority
from rallypoint.protocol.fig import fig_pb2
from rallypoint.protocol.limits import Limits
from rallypoint.routing.envelope import Envelope
from rallypoint.storage.base.federation import FederationRecords

log = logging.getLogger(__name__)

DURABLE = frozenset({Priority.EMERGENCY, Priority.MESSAGE})
# Room for what a FederatedEvent adds around the largest accepted event (groups, provenance, marks).
FEDERATION_OVERHEAD_BYTES = 4096


class LinkState(enum.StrEnum):
    CONNECTING = "connecting"
    UP = "up"
    DOWN = "down"


class PeerLink:
    """The queue, state and statistics of one peer, whichever side dialed."""

    def __init__(
        self,
        peer: FederationPeer,
        *,
        node_id: str,
        store: FederationRecords,
        seen: dict[tuple[str, str], int],
        accept: Callable[[Envelope], object],
        clock: Clock,
        limits: Limits,
        max_hops: int,
        queue_max: int,
        budget_bytes_per_s: float = 0.0,
        recent: RecentReports | None = None,
        ties: SameTimeOrder | None = None,
    ) -> None:
        self.peer = peer
        self.name = peer.name
        self._id = f"fed:{peer.name}"
        self._node_id = node_id
        self._store = store
        self._seen = seen
        # Shared by every link of the node: a report reaching us by two paths is accepted once.
        self._recent = recent if recent is not None else RecentReports()
        # Shared too: every peer gets the same tie number for the same report.
        self._ties = ties if ties is not None else SameTimeOrder()
        self._journal = PositionJournal(store, peer.name, clock)
        # The router may offer events before load() has restored the queue (a client reconnecting
        # right after a restart): they wait here, then take their sequence numbers after the backlog.
        self._loaded = asyncio.Event()
        self._early: list[Envelope] = []
        self._accept = accept
        self._clock = clock
        self._limits = limits
        self._max_hops = max_hops
        self._queue_max = queue_max
        self.state = LinkState.DOWN
        self.down_since = clock.monotonic()
        self.last_contact_ms: int | None = None
        self.bytes_sent = 0
        self.bytes_received = 0
        self.events_sent = 0
        self.events_received = 0
        self.dropped = 0
        self.remote_groups: tuple[str, ...] = ()
        # uid -> (type, our groups) of every contact learnt through this link.
        self.contacts: dict[str, tuple[str, frozenset[str]]] = {}
        self._urgent = DurableLane(URGENT, peer.name)
        self._message = DurableLane(MESSAGE, peer.name)
        self._lanes = (self._urgent, self._message)  # in sending order
        self._latest: dict[str, tuple[fig_pb2.FederatedEvent, int]] = {}
        self._dirty: dict[str, None] = {}
        # Acknowledgements to send, per lane (``lanes.URGENT`` / ``lanes.MESSAGE``): the peer's queue
        # epoch and the highest seq accepted in it.
        self._ack_out: dict[str, tuple[str, int]] = {}
        self._gen = 0
        self._wake = asyncio.Event()
        self._persist = asyncio.Event()
        self._closed = False
        # Link budget (off at 0): the burst holds the largest message, or that message could never go.
        self._policy: ThinningPolicy | None = None
        if budget_bytes_per_s > 0:
            burst = max(int(budget_bytes_per_s * 2), limits.max_event_bytes + FEDERATION_OVERHEAD_BYTES)
            self._policy = ThinningPolicy(LinkBudget(budget_bytes_per_s, burst, clock.monotonic()))
        # Under a budget: the envelope of each uid's latest position (thinning decides per uid),
        # and uids whose latest report was thinned, offered again once the interval may have passed.
        self._envelopes: dict[str, Envelope] = {}
        self._held: dict[str, None] = {}

    # Subscriber protocol -------------------------------------------------------------------------
    # Speaks for many remote clients: the directory maps their uids and callsigns to this link.
    is_relay = True

    @property
    def id(self) -> str:
        return self._id

    @property
    def read_groups(self) -> frozenset[str]:
        return frozenset(self.peer.groups_out)

    @property
    def write_groups(self) -> frozenset[str]:
        return frozenset(self.peer.groups_in.values())

    def offer(self, envelope: Envelope) -> None:
        """Queue an event the router gave this peer (durable for priority classes, else coalesced)."""
        event = envelope.event
        if envelope.origin.session_id == self._id:
            return
        if not self._loaded.is_set():
            if len(self._early) < self._queue_max:
                self._early.append(envelope)
            return
        if envelope.repeat:
            # Emergency re-broadcasts stay local: the peer repeats the alert it received itself,
            # and a long outage must not fill the durable queue with copies.
            return
        now = self._clock.now_ms()
        if event.stale <= now:
            return
        groups = sorted({self.peer.groups_out[g] for g in envelope.origin.groups if g in self.peer.groups_out})
        if not groups or has_flow_tag(event.detail.xml, self._node_id):
            return
        hops = flow_hops(event.detail.xml)
        if hops >= self._max_hops:
            self.dropped += 1
            return
        lane = self._lane(envelope.priority) if envelope.priority in DURABLE else None
        seq = lane.assign() if lane is not None else None
        # A coalesced report entering federation here (no server tagged it yet) gets its tie number.
        tie = self._ties.tie(event) if lane is None and hops == 0 else None
        fed = to_federated(
            event, groups=groups, node_id=self._node_id, now_ms=now, provenance=[(self._node_id, self._node_id)],
            hops=(self._max_hops, hops + 1), seq=seq, lane=lane.tag if lane is not None else "",
            epoch=lane.epoch if lane is not None else "", tie=tie,
        )
        if lane is not None and seq is not None:
            lane.queue(seq, fed)
            if event.type == DELETE and event.detail.link_uid is not None:
                self._forget(event.detail.link_uid, lane)
            self._persist.set()
        else:
            self._latest[event.uid] = (fed, event.stale)
            self._journal.put(event.uid, fed, event.stale)
            self._persist.set()
            if self._policy is not None:
                self._envelopes[event.uid] = envelope
                self._held.pop(event.uid, None)
            # Re-inserted at the end: the queue stays in order of the latest report.
            self._dirty.pop(event.uid, None)
            self._dirty[event.uid] = None
            self._wake.set()

    def _lane(self, priority: Priority) -> DurableLane:
        return self._urgent if lane_tag(priority) == URGENT else self._message

    def _forget(self, uid: str, delete_lane: DurableLane) -> None:
        """A delete of ``uid`` is queued: nothing of ``uid`` queued before it may reach the peer after it."""
        self._latest.pop(uid, None)
        self._journal.drop(uid)
        self._dirty.pop(uid, None)
        self._envelopes.pop(uid, None)
        self._held.pop(uid, None)
        # Within its own lane the delete keeps its place, so only a lane it overtakes needs cleaning.
        if delete_lane is self._urgent:
            self._message.cancel(uid)

    # Lifecycle -----------------------------------------------------------------------------------
    async def load(self) -> None:
        """Restore the unacknowledged backlog and the latest reports from SQLite (before any connection)."""
        await persister.load(self)
        self._loaded.set()
        early, self._early = self._early, []
        # Not a delivery: envelopes the dispatcher already delivered to this link wait here until
        # its queue is loaded; the link queues them for itself (a bus publication would deliver
        # them to other receivers again).
        for envelope in early:
            self.offer(envelope)

    async def wait_loaded(self) -> None:
        """Return once :meth:`load` is done (a peer's streams wait for it: acks and ``seen`` need it)."""
        await self._loaded.wait()

    async def run_persister(self) -> None:
        """Write queued messages, latest reports and acknowledgements to SQLite, off the ingest path."""
        await persister.run(self)

    def close(self) -> None:
        """Stop any outgoing stream; the persister writes what is pending, then returns."""
        self._closed = True
        self._gen += 1
        self._persist.set()
        self._wake.set()

    def attach(self, *, peer_answers: bool = False) -> int:
        """A connection to the peer is up: replay the backlog and latest positions on it.

        ``peer_answers``: the peer answers queue checks (``federation/queue_check.py``), so each lane
        waits for the peer's mark before it sends.
        """
        self._gen += 1
        self.state = LinkState.UP
        for lane in self._lanes:
            lane.sent = lane.acked
        queue_check.begin(self._lanes, peer_answers=peer_answers)
        now = self._clock.now_ms()
        self._latest = {uid: v for uid, v in self._latest.items() if v[1] > now}
        self._dirty = dict.fromkeys(self._latest)
        self._held.clear()
        self._envelopes = {uid: e for uid, e in self._envelopes.items() if uid in self._latest}
        self._wake.set()
        log.info("federation link up", extra={"peer": self.name})
        return self._gen

    def detach(self, gen: int) -> None:
        """The connection ``gen`` ended (only the newest one changes the state)."""
        if gen == self._gen and self.state is LinkState.UP:
            self.state = LinkState.DOWN
            self.down_since = self._clock.monotonic()
            log.info("federation link down", extra={"peer": self.name})

    def connecting(self) -> None:
        if self.state is not LinkState.UP:
            self.state = LinkState.CONNECTING

    @property
    def queue_depth(self) -> int:
        return sum(lane.waiting() for lane in self._lanes) + len(self._dirty) + len(self._held)

    @property
    def unwritten(self) -> int:
        """Accepted for the peer but not yet in ``federation.db``: messages, tombstones, latest reports."""
        lanes = sum(len(lane.unpersisted) + len(lane.writing) + len(lane.cancelled) for lane in self._lanes)
        return lanes + self._journal.unwritten + len(self._early)

    @property
    def unacked(self) -> int:
        return sum(len(lane.unpersisted) + len(lane.writing) + len(lane.unacked) for lane in self._lanes)

    async def outgoing(self, gen: int) -> AsyncIterator[fig_pb2.FederatedEvent]:
        """What to send on connection ``gen``: acknowledgements, then the durable backlog, then positions."""
        while gen == self._gen and not self._closed:
            msg, retry_s = self.next_message()
            if msg is None:
                self._wake.clear()
                if retry_s is None:
                    await self._wake.wait()
                else:
                    # Budget refill or thinning interval: new traffic may also wake us earlier.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=max(retry_s, 0.005))
                continue
            self.bytes_sent += msg.ByteSize()
            self.events_sent += 1
            yield msg

    def _next_message(self) -> fig_pb2.FederatedEvent | None:
        if (control := self.pending_control()) is not None:
            msg, sent = control
            sent()
            return msg
        if (durable := self.next_durable()) is not None:
            lane, seq = durable
            lane.mark_sent(seq)
            return lane.unacked[seq]
        now = self._clock.now_ms()
        while self._dirty:
            uid = next(iter(self._dirty))
            del self._dirty[uid]
            fed, stale = self._latest[uid]
            if stale > now:
                return fed
        return None

    def next_message(self) -> tuple[fig_pb2.FederatedEvent | None, float | None]:
        """The next message to send, else ``(None, seconds until the budget may allow one, or None)``."""
        if self._policy is None:
            return self._next_message(), None
        return next_within_budget(self, self._policy)

    def pending_control(self) -> tuple[fig_pb2.FederatedEvent, Callable[[], object]] | None:
        """The next acknowledgement (urgent lane first), else queue check, to send, and how to mark it sent."""
        for tag in (URGENT, MESSAGE):
            if (pending := self._ack_out.get(tag)) is not None:
                epoch, seq = pending
                return ack_event(self._node_id + tag, seq, self._clock.now_ms(), epoch), partial(self._ack_out.pop, tag)
        if (check := queue_check.due(self, self._clock.now_ms())) is not None:
            lane, msg = check
            return msg, partial(setattr, lane, "check_due", False)
        return None

    def next_durable(self) -> tuple[DurableLane, int] | None:
        """The lane and sequence number of the next priority message to send (urgent lane first)."""
        now = self._clock.now_ms()
        for lane in self._lanes:
            if lane.checked and lane.unacked and (seq := lane.next_to_send(now)):
                return lane, seq
        return None

    @property
    def thinning(self) -> bool:
        """True while the link budget is thinning positions (the per-uid interval is above 0)."""
        return self._policy is not None and self._policy.interval_s > 0

    # Inbound (federation/inbound.py) -------------------------------------------------------------
    async def receive(self, fed: fig_pb2.FederatedEvent) -> None:
        """Check and accept one event from the peer (acks, loops, hops, groups, duplicates)."""
        await inbound.receive(self, fed)

    def _queue_ack(self, seq: int, tag: str = MESSAGE, epoch: str = "") -> None:
        pending = self._ack_out.get(tag)
        # A new epoch replaces the pending mark: the old queue is gone, its acknowledgement is moot.
        if pending is None or pending[0] != epoch or pending[1] < seq:
            self._ack_out[tag] = (epoch, seq)
        self._wake.set()

    def expire_contacts(self, timeout_s: float) -> int:
        """If down longer than ``timeout_s``, remove every remote contact from local maps (``t-x-d-d``)."""
        return inbound.expire_contacts(self, timeout_s)

    def snapshot(self) -> dict[str, object]:
        """Link state for ``GET /api/links`` and metrics."""
        return {
            "name": self.name,
            "direction": "outbound" if self.peer.host else "inbound",
            "state": self.state.value,
            "queue_depth": self.queue_depth,
            "unacknowledged": self.unacked,
            "unwritten": self.unwritten,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "events_sent": self.events_sent,
            "events_received": self.events_received,
            "dropped": self.dropped,
            "last_contact_ms": self.last_contact_ms,
            "remote_contacts": len(self.contacts),
            "thinning": self.thinning,
            "budget_bytes_per_s": self._policy.budget.bytes_per_s if self._policy else 0.0,
            "budget_burst_bytes": self._policy.budget.burst_bytes if self._policy else 0,
            "positions_thinned": self._policy.skipped if self._policy else 0,
        }
