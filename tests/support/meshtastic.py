"""A simulated Meshtastic node: the client API (0x94 0xC3 framing) on a loopback TCP port.

It answers ``want_config_id`` like a node (its own number, the nodes it knows, then
``config_complete_id``), records every packet a client sends, acknowledges those that ask for
it (``ROUTING_APP`` with ``request_id``, as the firmware does when a neighbour heard it) and
hands clients whatever a test injects: packets as heard on the mesh, or raw bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from rallypoint.connectors.meshtastic.framing import FrameDecoder, encode_frame
from tests.support.poll import wait_until_sync

NODE_NUM = 0x0A1B2C3D


def packet(sender: int, port: int, payload: bytes, packet_id: int, *, to: int = 0xFFFF_FFFF) -> mesh_pb2.MeshPacket:
    """A decoded mesh packet as a node hands it to its client."""
    p = mesh_pb2.MeshPacket(to=to, id=packet_id, channel=0)
    setattr(p, "from", sender)
    p.decoded.portnum = port
    p.decoded.payload = payload
    return p


def from_radio(p: mesh_pb2.MeshPacket) -> bytes:
    """``p`` framed as the node sends it."""
    return encode_frame(mesh_pb2.FromRadio(packet=p).SerializeToString())


@dataclass
class SimulatedNode:
    """The node; ``sent`` holds every ``MeshPacket`` clients asked it to transmit."""

    users: dict[int, tuple[str, str]] = field(default_factory=dict)
    auto_ack: bool = True
    sent: list[mesh_pb2.MeshPacket] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    configured: int = 0
    heartbeats: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(0x1000))

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener and every client."""
        for writer in self.writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def inject(self, p: mesh_pb2.MeshPacket) -> None:
        """Hand a packet heard on the mesh to every client."""
        await self.inject_raw(from_radio(p))

    async def inject_raw(self, data: bytes) -> None:
        """Write raw bytes to every client (garbage, oversize headers, split frames)."""
        for writer in self.writers:
            writer.write(data)
            await writer.drain()

    def next_id(self) -> int:
        """A fresh packet id."""
        return next(self._ids)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Speak the client API on one stream (a TCP client, or a serial line in tests)."""
        frames = FrameDecoder()
        self.writers.append(writer)
        try:
            while data := await reader.read(4096):
                frames.receive_data(data)
                while (frame := frames.next_frame()) is not None:
                    message = mesh_pb2.ToRadio()
                    message.ParseFromString(frame)
                    await self._handle(message, writer)
        except ConnectionError:
            pass
        finally:
            if writer in self.writers:
                self.writers.remove(writer)

    async def _handle(self, message: mesh_pb2.ToRadio, writer: asyncio.StreamWriter) -> None:
        match message.WhichOneof("payload_variant"):
            case "want_config_id":
                out = [mesh_pb2.FromRadio(my_info=mesh_pb2.MyNodeInfo(my_node_num=NODE_NUM))]
                for num, (long_name, short_name) in self.users.items():
                    info = mesh_pb2.NodeInfo(num=num, user=mesh_pb2.User(long_name=long_name, short_name=short_name))
                    out.append(mesh_pb2.FromRadio(node_info=info))
                out.append(mesh_pb2.FromRadio(config_complete_id=message.want_config_id))
                writer.write(b"".join(encode_frame(m.SerializeToString()) for m in out))
                self.configured += 1
            case "packet":
                self.sent.append(message.packet)
                if message.packet.want_ack and self.auto_ack:
                    ack = packet(NODE_NUM, portnums_pb2.ROUTING_APP, mesh_pb2.Routing().SerializeToString(),
                                 self.next_id(), to=NODE_NUM)
                    ack.decoded.request_id = message.packet.id
                    writer.write(from_radio(ack))
            case "heartbeat":
                self.heartbeats += 1
            case _:
                pass
        await writer.drain()


@contextlib.contextmanager
def mosquitto(tmp: Path) -> Iterator[int]:
    """A Mosquitto broker of our own on a free loopback port (skips the test when none is installed)."""
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto): MQTT gateway tests need a real broker")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {proc.stderr.read() if proc.stderr else b''!r}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return False
        return True

    try:
        wait_until_sync(listening, "mosquitto listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
