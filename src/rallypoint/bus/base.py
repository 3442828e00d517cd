"""The bus interface every backend implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience

DeliveryHandler = Callable[[Envelope, Audience], object]


class MessageBus(Protocol):
    """Carries routed envelopes to every node's dispatcher."""

    def subscribe(self, handler: DeliveryHandler) -> None:
        """Register the node's delivery handler (one per node)."""
        ...

    def publish(self, envelope: Envelope, audience: Audience) -> None:
        """Hand an envelope and its audience to every node; never blocks the caller."""
        ...

    async def close(self) -> None: ...
