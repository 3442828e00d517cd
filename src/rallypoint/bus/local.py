"""In-process bus: a synchronous hand-off to the local dispatcher (single node, the default)."""

from __future__ import annotations

from rallypoint.bus.base import DeliveryHandler
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience


class LocalBus:
    """Delivers in the caller's stack frame: no copies, no queues, no task switches."""

    def __init__(self) -> None:
        self._handlers: list[DeliveryHandler] = []
        self.published = 0

    def subscribe(self, handler: DeliveryHandler) -> None:
        self._handlers.append(handler)

    def publish(self, envelope: Envelope, audience: Audience) -> None:
        self.published += 1
        for handler in self._handlers:
            handler(envelope, audience)

    async def close(self) -> None:
        self._handlers.clear()
