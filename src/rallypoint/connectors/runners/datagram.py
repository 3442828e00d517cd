"""UDP feeds: AIS and NMEA forwarders (one sentence or a few per datagram), raw Mode-S, CoT multicast.

A datagram is complete in itself, so the line decoders get an end of line after each one (a
forwarder that omits the final CR LF still decodes). Datagrams arriving while the feed is paused
are dropped and counted: UDP has no way to make the sender wait.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Callable

from rallypoint.clock import Clock
from rallypoint.connectors.base import StreamDecoder
from rallypoint.connectors.runners.base import RunnerCore
from rallypoint.services.feed_types import FeedStatistics, ObservationSink


def feed_socket(host: str, port: int, multicast: str = "", interface: str = "0.0.0.0") -> socket.socket:
    """A bound, non-blocking UDP socket; joins ``multicast`` on ``interface`` when given."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # Several listeners of one multicast group on this host (a TAK client, another server) share the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if multicast:
            if not ipaddress.IPv4Address(multicast).is_multicast:
                raise ValueError(f"{multicast} is not a multicast group")
            sock.bind(("", port))
            membership = struct.pack("4s4s", socket.inet_aton(multicast), socket.inet_aton(interface))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        else:
            sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _FeedDatagrams(asyncio.DatagramProtocol):
    def __init__(self, runner: UdpRunner) -> None:
        self._runner = runner

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._runner.datagram(data)

    def error_received(self, exc: Exception) -> None:
        self._runner.core.failed(exc)


class UdpRunner:
    """Listen on ``host:port`` (or a multicast group) and decode each datagram."""

    def __init__(self, name: str, host: str, port: int, decoder_factory: Callable[[], StreamDecoder], clock: Clock,
                 sink: ObservationSink, *, multicast: str = "", interface: str = "0.0.0.0",
                 end_of_datagram: bytes | None = b"\n", buffer_items: int | None = None) -> None:
        self.core = RunnerCore(name, clock, sink) if buffer_items is None else RunnerCore(
            name, clock, sink, buffer_items=buffer_items)
        self._decoder = decoder_factory()
        self.core.attach(self._decoder.rejects)
        self._host = host
        self._port = port
        self._multicast = multicast
        self._interface = interface
        self._end = end_of_datagram
        self.bound = asyncio.Event()
        self.port = 0

    def datagram(self, data: bytes) -> None:
        """Decode one datagram (dropped and counted while paused)."""
        core = self.core
        if core.paused:
            core.dropped_paused += 1
            return
        now = core.now()
        observations = self._decoder.receive(data, now)
        if self._end is not None and not data.endswith(b"\n"):
            observations = [*observations, *self._decoder.receive(self._end, now)]
        core.received(len(data), observations)

    async def run(self) -> None:
        """Listen until cancelled."""
        loop = asyncio.get_running_loop()
        sock = feed_socket(self._host, self._port, self._multicast, self._interface)
        transport, _ = await loop.create_datagram_endpoint(lambda: _FeedDatagrams(self), sock=sock)
        self.port = int(sock.getsockname()[1])
        self.core.connections = 1
        self.bound.set()
        try:
            await self.core.drain()
        finally:
            self.core.connections = 0
            transport.close()

    def pause(self) -> None:
        """Drop (and count) datagrams until :meth:`resume`."""
        self.core.pause()

    def resume(self) -> None:
        """Decode datagrams again."""
        self.core.resume()

    def statistics(self) -> FeedStatistics:
        """The feed's counters now."""
        return self.core.statistics()
