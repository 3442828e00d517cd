"""In-process bus: a synchronous hand-off to the local dispatcher (single node, the default)."""

from __future__ import annotations

import logging

import msgspec

from rallypoint.bus.base import DeliveryHandler, claim_for_node
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience

log = logging.getLogger(__name__)


class BusStatistics(msgspec.Struct, frozen=True):
    """``published``: envelopes handed to the subscribers. ``foreign_refused``: envelopes another
    node published that something on this node tried to publish again (loop prevention)."""

    published: int
    foreign_refused: int


class LocalBus:
    """Delivers in the caller's stack frame: no copies, no queues, no task switches.

    Only this node's envelopes are published: one that names another node as its origin already
    went to every node through that node's publication, so publishing it again (an emergency
    repeat, a feature that re-ingests what it received) would deliver it twice, and between two
    nodes doing the same, forever. An envelope whose origin names no node was made here by a
    producer that did not say so; it is stamped with this node before it is handed over.
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self._handlers: list[DeliveryHandler] = []
        self.published = 0
        self.foreign_refused = 0

    def subscribe(self, handler: DeliveryHandler, *, cluster_only: bool = False) -> None:
        # There is no other node here: a handler of other nodes' publications has nothing to do.
        if not cluster_only:
            self._handlers.append(handler)

    def publish(self, envelope: Envelope, audience: Audience) -> None:
        if not claim_for_node(self.node, envelope):
            self.foreign_refused += 1
            log.debug("envelope of another node not published again",
                      extra={"uid": envelope.event.uid, "node": envelope.origin.node})
            return
        self.published += 1
        for handler in self._handlers:
            handler(envelope, audience)

    async def start(self) -> None:
        """Nothing to connect: the hand-off is in-process."""

    def statistics(self) -> BusStatistics:
        """Counters of this bus."""
        return BusStatistics(published=self.published, foreign_refused=self.foreign_refused)

    async def close(self) -> None:
        self._handlers.clear()
