"""The bus interface every backend implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec

from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience

DeliveryHandler = Callable[[Envelope, Audience], object]


class BusCounters(Protocol):
    """What every bus counts (each backend's ``statistics()`` adds its own)."""

    @property
    def published(self) -> int: ...

    @property
    def foreign_refused(self) -> int: ...


class MessageBus(Protocol):
    """Carries published envelopes to the subscribers of every node.

    ``node`` is this node's id: envelopes whose origin names no node are stamped with it on
    publication, and another node's envelopes are never published again (loop prevention).
    """

    @property
    def node(self) -> str: ...

    def subscribe(self, handler: DeliveryHandler, *, cluster_only: bool = False) -> None:
        """Register a handler; every publication of every node is handed to each, in this order.

        A node subscribes its contact index, its features (``Ingest.on_published``) and its
        dispatcher, in that order. ``cluster_only``: the handler only keeps track of other nodes
        (their sessions, their reports on mail), so a bus that reaches no other node (the
        in-process bus) never calls it and its publications do not pay for the call.
        """
        ...

    def publish(self, envelope: Envelope, audience: Audience) -> None:
        """Hand an envelope and its audience to every node; never blocks the caller.

        This node's handlers have run, in the caller's frame, when it returns: a publisher may
        rely on what they did (the picture updated, the receivers offered).
        """
        ...

    async def start(self) -> None:
        """Connect before the node serves (a network bus); nothing to do for an in-process bus."""
        ...

    def statistics(self) -> BusCounters:
        """This bus's counters: publications and refused re-publications at least."""
        ...

    async def close(self) -> None: ...


def claim_for_node(node: str, envelope: Envelope) -> bool:
    """Whether this node may publish ``envelope``; stamps it with ``node`` when its origin names none.

    An envelope whose origin names another node already went to every node through that node's
    publication: publishing it again would deliver it twice (loop prevention).
    """
    origin = envelope.origin
    if origin.node == node:
        return True
    if origin.node:
        return False
    envelope.origin = msgspec.structs.replace(origin, node=node)
    return True
