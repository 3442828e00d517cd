"""Thin transports to a mesh: a node's client API over TCP or serial, and the MQTT uplink/downlink.

Each link is opened as an async context manager and offers the same two calls: ``receive()``
(the next batch of ``client.py`` events, ``Received`` packets already decrypted; an empty list
means the link ended) and ``send(port, payload, packet_id, want_ack)``. All protocol work is in
the sans-IO modules; these only move bytes.

Serial needs no thread: the device is opened and configured (speed, raw mode) with pyserial,
then its file descriptor is read and written through asyncio's pipe transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from meshtastic.protobuf import mesh_pb2

from rallypoint.connectors.meshtastic.client import NodeSeen, RadioClient, RadioEvent, Received, Refused
from rallypoint.connectors.meshtastic.mqtt_codec import decode_envelope, encode_envelope, node_id_text
from rallypoint.connectors.meshtastic.packets import BROADCAST
from rallypoint.connectors.meshtastic.spec import MeshLinkKind, MeshSpec
from rallypoint.errors import RemoteProtocolError

log = logging.getLogger(__name__)
READ_CHUNK = 4096


class MeshLink(Protocol):
    """An open connection to a mesh."""

    async def receive(self) -> list[RadioEvent]:
        """The next events; an empty list when the link closed."""
        ...

    async def send(self, *, port: int, payload: bytes, packet_id: int, want_ack: bool) -> None:
        """Send one broadcast packet into the mesh."""
        ...

    async def heartbeat(self) -> None:
        """Tell the peer we are still here (nothing to do where the transport keeps itself alive)."""
        ...


class StreamLink:
    """A node's client API on a byte stream (TCP or serial)."""

    def __init__(self, reader: asyncio.StreamReader, write: Callable[[bytes], None], channel: int,
                 rng: random.Random) -> None:
        self.client = RadioClient(rng)
        self._reader = reader
        self._write = write
        self._channel = channel
        write(self.client.start())

    async def receive(self) -> list[RadioEvent]:
        """Events from the next bytes the node sends (skipping reads that carry none)."""
        while True:
            data = await self._reader.read(READ_CHUNK)
            if not data:
                return []
            events = self.client.receive_data(data)
            if events:
                return events

    async def send(self, *, port: int, payload: bytes, packet_id: int, want_ack: bool) -> None:
        """One packet to the node, which transmits it on our channel."""
        self._write(self.client.packet(port=port, payload=payload, packet_id=packet_id, channel=self._channel,
                                       want_ack=want_ack))

    async def heartbeat(self) -> None:
        """A ``ToRadio`` heartbeat (nodes drop API clients they have not heard from)."""
        self._write(self.client.heartbeat())


@contextlib.asynccontextmanager
async def open_tcp(spec: MeshSpec, rng: random.Random) -> AsyncIterator[StreamLink]:
    """A node's client API on TCP (``meshtasticd``, Wi-Fi nodes: port 4403)."""
    reader, writer = await asyncio.open_connection(spec.host, spec.port)
    try:
        yield StreamLink(reader, writer.write, spec.channel, rng)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def open_serial(spec: MeshSpec, rng: random.Random) -> AsyncIterator[StreamLink]:
    """A node's client API on a serial device, read and written by the event loop (no thread)."""
    import serial  # pyserial, installed with the meshtastic package; only needed here

    port = serial.Serial(spec.device, spec.baud, timeout=0, exclusive=False)
    loop = asyncio.get_running_loop()
    fd = port.fileno()
    os.set_blocking(fd, False)
    reader = asyncio.StreamReader()
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(fd), "rb", buffering=0))
    write_transport, _ = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(os.dup(fd), "wb", buffering=0))
    try:
        yield StreamLink(reader, write_transport.write, spec.channel, rng)
    finally:
        read_transport.close()
        write_transport.close()
        port.close()


class MqttLink:
    """The channel's MQTT topic: ``ServiceEnvelope``s in and out, decrypted and encrypted with the channel key.

    Envelopes we published come back on the subscription and are skipped (same gateway id).
    An envelope that cannot be read is a ``Refused`` event (``wrong_key``, ``malformed``...).
    """

    def __init__(self, client: object, spec: MeshSpec) -> None:
        self._client = client
        self._spec = spec
        self._gateway = node_id_text(spec.node_num)
        self._messages = client.messages  # type: ignore[attr-defined]

    async def receive(self) -> list[RadioEvent]:
        """The next packet from another gateway on the channel (decrypted)."""
        async for message in self._messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            try:
                envelope, packet = decode_envelope(bytes(payload), self._spec.key)
            except RemoteProtocolError as exc:
                return [Refused(exc.reason, exc.detail)]
            if envelope.gateway_id == self._gateway:
                continue  # our own downlink, heard back
            events: list[RadioEvent] = [Received(packet)]
            if packet.decoded.portnum == 4:  # NODEINFO_APP: names travel like any packet
                user = mesh_pb2.User()
                with contextlib.suppress(Exception):
                    user.ParseFromString(packet.decoded.payload)
                    events.insert(0, NodeSeen(getattr(packet, "from"), user))
            return events
        return []

    async def send(self, *, port: int, payload: bytes, packet_id: int, want_ack: bool) -> None:
        """Publish one packet as if this gateway's node had sent it."""
        packet = mesh_pb2.MeshPacket(to=BROADCAST, id=packet_id, want_ack=want_ack, hop_limit=3)
        setattr(packet, "from", self._spec.node_num)
        packet.decoded.portnum = port
        packet.decoded.payload = payload
        body = encode_envelope(packet, key=self._spec.key, channel_id=self._spec.channel_name, gateway_id=self._gateway)
        await self._client.publish(f"{self._spec.topic}/{self._gateway}", body)  # type: ignore[attr-defined]

    async def heartbeat(self) -> None:
        """Nothing: the MQTT client keeps its own session alive."""


@contextlib.asynccontextmanager
async def open_mqtt(spec: MeshSpec, rng: random.Random) -> AsyncIterator[MqttLink]:
    """The channel topic on an MQTT broker (aiomqtt)."""
    import ssl

    import aiomqtt

    tls = ssl.create_default_context() if spec.tls else None
    async with aiomqtt.Client(spec.host, spec.port, identifier=f"rallypoint-{spec.name}-{rng.randrange(1 << 32):08x}",
                              tls_context=tls) as client:
        await client.subscribe(f"{spec.topic}/#")
        yield MqttLink(client, spec)


def opener(spec: MeshSpec) -> Callable[[MeshSpec, random.Random], contextlib.AbstractAsyncContextManager[MeshLink]]:
    """The open function for a spec's transport."""
    match spec.kind:
        case MeshLinkKind.TCP:
            return open_tcp
        case MeshLinkKind.SERIAL:
            return open_serial
        case MeshLinkKind.MQTT:
            return open_mqtt
