"""The cluster's picture kept in NATS (KV bucket ``rp_<cluster>_latest``), so a node that starts
(restarted, or new to the cluster) begins with what the others picture.

Writing: the node an event entered puts it in the bucket when it entered the picture (a client's
own SA, a broadcast map item) and deletes the key when a ``t-x-d-d`` removed its target (a
client's disconnect notice, also those published for the clients of a dead node, or a deleted
marker). Writes are coalesced by uid and sent every ``flush_s``: a unit reporting at 1 Hz costs
one write per flush, not one per report.

Reading, once at start before the node serves: every non-stale entry of another node is handed
to this node's bus subscribers as if it had just arrived (picture, contact index, features) with
an empty audience (nobody is connected yet to be given it). Entries of this node's own clients
are sessions that died with its previous run: their disconnect notices are published, so every
node's picture drops them. Stale entries are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from rallypoint.bus.base import MessageBus
from rallypoint.bus.lease import NodeAlive
from rallypoint.bus.nats import NatsBus
from rallypoint.clock import Clock
from rallypoint.model.cot_type import DELETE
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.security.policy import is_device_sa
from rallypoint.services.ingest import Ingest
from rallypoint.services.messages import disconnect_delete
from rallypoint.services.presence import Presence

log = logging.getLogger(__name__)


class LatestStore:
    """The bucket's operations (``NatsBus.latest_*``)."""

    def __init__(
        self, *, put: Callable[[Envelope], Awaitable[None]], get: Callable[[str], Awaitable[Envelope | None]],
        keys: Callable[[], Awaitable[list[str]]], delete: Callable[[str], Awaitable[None]],
    ) -> None:
        self.put, self.get, self.keys, self.delete = put, get, keys, delete


class LatestSync:
    """Mirrors this node's share of the picture into the bucket; restores the picture at start."""

    def __init__(self, *, node: str, presence: Presence, store: LatestStore, clock: Clock) -> None:
        self._node = node
        self._presence = presence
        self._store = store
        self._clock = clock
        self._pending: dict[str, Envelope | None] = {}
        self._wake = asyncio.Event()
        self.written = self.deleted = self.failed = 0

    @property
    def pending(self) -> int:
        """Uids whose change waits for the next flush (the backlog of writes to the bucket)."""
        return len(self._pending)

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """A bus subscriber after the features: note what this node's publications did to the picture."""
        if envelope.origin.node != self._node or envelope.repeat or audience.delivery_only:
            return
        event = envelope.event
        if event.type == DELETE:
            target = event.detail.link_uid
            if target is not None and target not in self._presence.sa and target not in self._presence.items:
                self._pending[target] = None
                self._wake.set()
            return
        uid = event.uid
        if self._presence.sa.get(uid) is envelope or self._presence.items.get(uid) is envelope:
            self._pending[uid] = envelope
            self._wake.set()

    async def run(self, stop: asyncio.Event, flush_s: float = 0.5) -> None:
        """Write what changed every ``flush_s`` until ``stop``, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=flush_s)
            await self.flush()

    async def flush(self) -> None:
        """Write every pending change; on the first failure the rest waits for the next flush.

        Stopping there keeps a NATS outage from costing one timeout per pending uid.
        """
        pending, self._pending = self._pending, {}
        items = list(pending.items())
        for done, (uid, envelope) in enumerate(items):
            try:
                if envelope is None:
                    await self._store.delete(uid)
                    self.deleted += 1
                else:
                    await self._store.put(envelope)
                    self.written += 1
            except Exception as exc:  # noqa: BLE001 (any NATS failure: keep the changes, try again)
                self.failed += 1
                log.debug("latest state not written", extra={"uid": uid, "error": repr(exc)})
                # Newer changes made meanwhile win over the ones kept back.
                for kept_uid, kept in items[done:]:
                    self._pending.setdefault(kept_uid, kept)
                return

    async def restore(self, replay: Callable[[Envelope, Audience], None], ingest: Ingest, alive: NodeAlive) -> int:
        """Hand the bucket's non-stale entries of other nodes to ``replay``; returns how many.

        This node's own clients of a previous run are announced gone (``ingest``); clients of a
        node that is not running (``alive``) are not restored.
        """
        now = self._clock.now_ms()
        restored = 0
        for uid in await self._store.keys():
            envelope = await self._store.get(uid)
            if envelope is None:
                continue
            if envelope.event.stale <= now:
                await self._store.delete(uid)
                continue
            if envelope.origin.node == self._node and is_device_sa(envelope.event):
                notice = disconnect_delete(envelope.event.uid, envelope.event.type, now)
                origin = envelope.origin
                ingest.accept(Envelope(notice, Origin(
                    session_id=origin.session_id, groups=origin.groups, principal=origin.principal, node=self._node,
                ), now))
                continue
            node = envelope.origin.node
            if is_device_sa(envelope.event) and node and await alive(node) is False:
                await self._store.delete(uid)
                continue
            replay(envelope, Audience())
            restored += 1
        log.info("picture restored from the cluster", extra={"entries": restored})
        return restored


def latest_sync_for(bus: MessageBus, presence: Presence, clock: Clock) -> tuple[LatestSync, NatsBus] | None:
    """The picture's mirror on a cluster bus, subscribed to it; None for a lone node (local bus)."""
    if not isinstance(bus, NatsBus):
        return None
    store = LatestStore(put=bus.latest_put, get=bus.latest_get, keys=bus.latest_list, delete=bus.latest_delete)
    sync = LatestSync(node=bus.node, presence=presence, store=store, clock=clock)
    bus.subscribe(sync.observe)
    return sync, bus
