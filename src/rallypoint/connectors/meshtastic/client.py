"""The client side of the Meshtastic client API (TCP 4403 and serial), sans-IO.

``RadioClient.start()`` gives the bytes that open a session (a wake-up run of ``0xC3`` then
``want_config_id``); ``receive_data(bytes)`` turns what the node sends into events: the node's
own number (``MyNode``), the nodes it knows (``NodeSeen``), received packets (``Received``), and
``Ready`` once the node has sent its configuration. ``packet(...)`` gives the bytes that send one
packet into the mesh. A frame that is not a ``FromRadio`` is counted and skipped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from meshtastic.protobuf import mesh_pb2

from rallypoint.connectors.meshtastic.framing import WAKE, FrameDecoder, encode_frame
from rallypoint.connectors.meshtastic.packets import BROADCAST


@dataclass(frozen=True, slots=True)
class MyNode:
    """The number of the node we are attached to."""

    num: int


@dataclass(frozen=True, slots=True)
class NodeSeen:
    """A node the radio knows, with its names."""

    num: int
    user: mesh_pb2.User


@dataclass(frozen=True, slots=True)
class Received:
    """A packet heard on the mesh (decoded by the radio with its channel keys)."""

    packet: mesh_pb2.MeshPacket


@dataclass(frozen=True, slots=True)
class Ready:
    """The node finished sending its configuration: the session is up."""


@dataclass(frozen=True, slots=True)
class Refused:
    """Input the link could not use (an MQTT message with the wrong key, a malformed envelope)."""

    reason: str
    detail: str = ""


RadioEvent = MyNode | NodeSeen | Received | Ready | Refused


class RadioClient:
    """One session with a node: framing, handshake, packets in and out."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._frames = FrameDecoder()
        self.config_id = self._rng.randrange(1, 0xFFFF_FFFF)
        self.my_num: int | None = None
        self.malformed = 0

    @property
    def garbage_bytes(self) -> int:
        """Bytes skipped between frames (debug text on serial lines, noise)."""
        return self._frames.garbage_bytes

    @property
    def oversize(self) -> int:
        """Frame headers that announced more than 512 bytes."""
        return self._frames.oversize

    def start(self) -> bytes:
        """Bytes opening the session: wake-up, then the request for the node's configuration."""
        return WAKE + encode_frame(mesh_pb2.ToRadio(want_config_id=self.config_id).SerializeToString())

    def receive_data(self, data: bytes) -> list[RadioEvent]:
        """Events in ``data`` (and earlier partial frames)."""
        self._frames.receive_data(data)
        events: list[RadioEvent] = []
        while (frame := self._frames.next_frame()) is not None:
            message = mesh_pb2.FromRadio()
            try:
                message.ParseFromString(frame)
            except DecodeError:
                self.malformed += 1
                continue
            match message.WhichOneof("payload_variant"):
                case "packet":
                    events.append(Received(message.packet))
                case "my_info":
                    self.my_num = message.my_info.my_node_num
                    events.append(MyNode(message.my_info.my_node_num))
                case "node_info" if message.node_info.HasField("user"):
                    events.append(NodeSeen(message.node_info.num, message.node_info.user))
                case "config_complete_id" if message.config_complete_id == self.config_id:
                    events.append(Ready())
                case _:
                    pass  # configuration, channels, log records: nothing a gateway needs
        return events

    def packet(self, *, port: int, payload: bytes, packet_id: int, channel: int = 0, want_ack: bool = False,
               to: int = BROADCAST) -> bytes:
        """The bytes sending one packet into the mesh on channel index ``channel``."""
        packet = mesh_pb2.MeshPacket(to=to, id=packet_id, channel=channel, want_ack=want_ack)
        packet.decoded.portnum = port
        packet.decoded.payload = payload
        return encode_frame(mesh_pb2.ToRadio(packet=packet).SerializeToString())

    def heartbeat(self) -> bytes:
        """A keep-alive for nodes that close idle API sessions."""
        return encode_frame(mesh_pb2.ToRadio(heartbeat=mesh_pb2.Heartbeat()).SerializeToString())
