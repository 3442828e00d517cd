"""UDP mesh input (ATAK SA on 6969): CoT XML and ``bf 01 bf`` protobuf datagrams on one port."""

from __future__ import annotations

import asyncio
import logging

from rallypoint.errors import RemoteProtocolError
from rallypoint.protocol import XmlDecoder
from rallypoint.protocol.wire import decode_datagram
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.transport.context import TransportContext

log = logging.getLogger(__name__)


class MeshDatagramProtocol(asyncio.DatagramProtocol):
    """Input only: each datagram is one event from an anonymous mesh participant."""

    def __init__(self, ctx: TransportContext) -> None:
        self._ctx = ctx
        self._origin = Origin(session_id="udp-mesh")
        self._decoder = XmlDecoder(ctx.limits)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        ctx = self._ctx
        try:
            event = decode_datagram(data, ctx.limits, self._decoder)
        except RemoteProtocolError as exc:
            ctx.metrics.rejected.labels(exc.reason, "udp").inc()
            log.warning("datagram rejected", extra={"peer": str(addr[0]), "reason": exc.reason, "detail": exc.detail})
            return
        if event is None:
            return
        try:
            ctx.ingest.accept(Envelope(event, self._origin, ctx.clock.now_ms()))
        except RemoteProtocolError as exc:
            ctx.metrics.rejected.labels(exc.reason, "udp").inc()
            log.warning("datagram rejected", extra={"peer": str(addr[0]), "reason": exc.reason})


async def start_datagram_listener(ctx: TransportContext, *, host: str, port: int) -> asyncio.DatagramTransport:
    """Bind the UDP mesh input."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: MeshDatagramProtocol(ctx), local_addr=(host, port), reuse_port=False
    )
    return transport
