"""Clients of a node that died without a word (``kill -9``, power lost) leave every other node's picture.

A node's clients are in the other nodes' pictures until their node publishes their disconnect
notices. A node that dies cannot, so each node keeps a liveness key in NATS (``node-<id>`` in the
``rp_<cluster>_leases`` bucket, renewed like a lease, expiring after its TTL), and the node holding
the repeater lease checks every node whose clients it pictures: a node whose key is missing on two
checks in a row (one TTL and one check period after its last renewal) is dead, and the checking
node publishes a disconnect notice (``t-x-d-d``, ``p-p``) for each of its clients' SA, on its
behalf. Every node then removes them (picture, contact index) and tells its own clients, as for
an ordinary disconnect. A node that answers nothing (NATS unreachable) proves nothing: no check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import msgspec

from rallypoint.bus.lease import NodeAlive
from rallypoint.clock import Clock
from rallypoint.routing.envelope import Envelope
from rallypoint.security.policy import is_device_sa
from rallypoint.services.ingest import Ingest
from rallypoint.services.messages import disconnect_delete
from rallypoint.services.presence import Presence

log = logging.getLogger(__name__)

# Checks in a row a node's key must be missing before its clients are removed: one missed
# check may be a node that has just started and not yet written its key.
MISSED_CHECKS = 2


class NodeWatch:
    """Removes from the cluster's picture the clients of nodes whose liveness key is gone."""

    def __init__(
        self, *, node: str, presence: Presence, ingest: Ingest, clock: Clock, alive: NodeAlive,
        may_act: Callable[[], bool],
    ) -> None:
        self._node = node
        self._presence = presence
        self._ingest = ingest
        self._clock = clock
        self._alive = alive
        self._may_act = may_act
        self._missed: dict[str, int] = {}
        self.nodes_removed = 0
        self.removed = 0

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        """Check every ``interval_s`` until ``stop``."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            if not stop.is_set():
                await self.check()

    async def check(self) -> list[str]:
        """One round: the nodes found dead (their clients' disconnect notices published)."""
        if not self._may_act():
            self._missed.clear()
            return []
        pictured = self._remote_clients()
        dead = []
        for node in sorted(pictured):
            alive = await self._alive(node)
            if alive is None:
                continue
            if alive:
                self._missed.pop(node, None)
                continue
            self._missed[node] = self._missed.get(node, 0) + 1
            if self._missed[node] >= MISSED_CHECKS:
                dead.append(node)
                del self._missed[node]
                self._remove(node, pictured[node])
        for node in [n for n in self._missed if n not in pictured]:
            del self._missed[node]
        return dead

    def _remote_clients(self) -> dict[str, list[Envelope]]:
        by_node: dict[str, list[Envelope]] = {}
        for envelope in list(self._presence.items.values()):
            node = envelope.origin.node
            if node and node != self._node and is_device_sa(envelope.event):
                by_node.setdefault(node, []).append(envelope)
        return by_node

    def _remove(self, node: str, clients: list[Envelope]) -> None:
        log.warning("node gone from the cluster; its clients leave the picture",
                    extra={"node": node, "clients": len(clients)})
        self.nodes_removed += 1
        now = self._clock.now_ms()
        for sa in clients:
            notice = disconnect_delete(sa.event.uid, sa.event.type, now)
            # Said on the dead node's behalf: its session and groups, published by this node.
            origin = msgspec.structs.replace(sa.origin, node=self._node)
            self._ingest.accept(Envelope(notice, origin, now))
            self.removed += 1
