"""UDP mesh input (ATAK SA on 6969): CoT XML and ``bf 01 bf`` protobuf datagrams on one port.

ATAK's SA mesh sends to the multicast group 239.2.3.1:6969; the listener can join any number of
groups on one interface. Mesh input is unauthenticated, so every source address has its own rate
limit and the listener binds to loopback unless an operator opts in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct

from rallypoint.errors import ConfigError, RemoteProtocolError
from rallypoint.protocol import XmlDecoder
from rallypoint.protocol.wire import decode_datagram
from rallypoint.routing.envelope import Envelope
from rallypoint.security.ratelimit import DatagramRateLimiter
from rallypoint.transport.context import TransportContext

log = logging.getLogger(__name__)


class MeshDatagramProtocol(asyncio.DatagramProtocol):
    """Input only: each datagram is one event from an anonymous mesh participant."""

    def __init__(self, ctx: TransportContext, limiter: DatagramRateLimiter) -> None:
        self._ctx = ctx
        # One origin for the whole mesh: its devices are anonymous and share this listener.
        self._origin = ctx.ids.origin(ctx.ids.session_id("udp-mesh"))
        self._decoder = XmlDecoder(ctx.limits)
        self._limiter = limiter
        # Log the first rate-limited datagram of a burst, not every one of a flood.
        self._limited: set[str] = set()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        ctx = self._ctx
        source = str(addr[0])
        if not self._limiter.allow(source, ctx.clock.monotonic()):
            ctx.metrics.rejected.labels("rate_limited", "udp").inc()
            if source not in self._limited and len(self._limited) < 1024:
                self._limited.add(source)
                log.warning("datagram rejected", extra={"peer": source, "reason": "rate_limited"})
            return
        self._limited.discard(source)
        try:
            event = decode_datagram(data, ctx.limits, self._decoder)
        except RemoteProtocolError as exc:
            ctx.metrics.rejected.labels(exc.reason, "udp").inc()
            log.warning("datagram rejected", extra={"peer": source, "reason": exc.reason, "detail": exc.detail})
            return
        if event is None:
            return
        try:
            ctx.ingest.accept(Envelope(event, self._origin, ctx.clock.now_ms()))
        except RemoteProtocolError as exc:
            ctx.metrics.rejected.labels(exc.reason, "udp").inc()
            log.warning("datagram rejected", extra={"peer": source, "reason": exc.reason})


def _mesh_socket(
    host: str, port: int, groups: tuple[str, ...], interface: str, *, reuse_port: bool = False
) -> socket.socket:
    """A bound UDP socket that has joined ``groups`` on ``interface``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # Other mesh listeners on the same host (an ATAK emulator, a second server) share the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            # Workers of one server: the kernel hands each unicast datagram to one of them.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        for group in groups:
            if not ipaddress.ip_address(group).is_multicast:
                raise ConfigError(f"udp_multicast: {group} is not a multicast address")
            membership = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(interface))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def start_datagram_listener(
    ctx: TransportContext,
    *,
    host: str,
    port: int,
    multicast_groups: tuple[str, ...] = (),
    multicast_interface: str = "0.0.0.0",
    reuse_port: bool = False,
) -> asyncio.DatagramTransport:
    """Bind the UDP mesh input, joining the given multicast groups (multicast needs a non-loopback bind
    address or ``0.0.0.0`` to receive from other hosts)."""
    loop = asyncio.get_running_loop()
    sock = _mesh_socket(host, port, multicast_groups, multicast_interface, reuse_port=reuse_port)
    limiter = DatagramRateLimiter(rate=ctx.max_events_per_s, burst=ctx.events_burst)
    transport, _ = await loop.create_datagram_endpoint(lambda: MeshDatagramProtocol(ctx, limiter), sock=sock)
    return transport
