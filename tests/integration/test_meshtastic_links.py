"""The Meshtastic gateway on each transport with real peers: hostile input over TCP from a simulated
node, the MQTT uplink/downlink through a real Mosquitto broker (wrong key counted and dropped),
and the serial transport on a pseudo-terminal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from rallypoint.clock import SystemClock
from rallypoint.config import MeshtasticConfig
from rallypoint.connectors.meshtastic.crypto import DEFAULT_KEY
from rallypoint.connectors.meshtastic.framing import encode_frame
from rallypoint.connectors.meshtastic.gateway import MeshGateway
from rallypoint.connectors.meshtastic.links import opener
from rallypoint.connectors.meshtastic.mqtt_codec import decode_envelope, encode_envelope
from rallypoint.connectors.meshtastic.spec import mesh_spec
from rallypoint.connectors.meshtastic.tak import Kind, TakCodec, TakMessage
from rallypoint.model.cot import CotEvent
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from tests.support.cot_client import chat
from tests.support.meshtastic import SimulatedNode, mosquitto, packet
from tests.support.poll import wait_until

PLI = TakMessage(kind=Kind.PLI, uid="ANDROID-x", callsign="XRAY", team="Cyan", role="Team Member", lat=1.0, lon=2.0)


class Collected:
    """What the gateway handed to ingest and to delivery."""

    def __init__(self) -> None:
        self.accepted: list[CotEvent] = []
        self.delivered: list[CotEvent] = []

    def accept(self, envelope: Envelope) -> None:
        self.accepted.append(envelope.event)

    def deliver(self, envelope: Envelope, audience: Audience) -> None:
        self.delivered.append(envelope.event)


@contextlib.asynccontextmanager
async def running(url: str, collected: Collected, heartbeat_s: float = 300.0,
                  **extra: object) -> AsyncIterator[MeshGateway]:
    spec = mesh_spec(MeshtasticConfig(url=url, name="test", **extra), default_node=0x0BADCAFE)  # type: ignore[arg-type]
    gateway = MeshGateway(spec, clock=SystemClock(), accept=collected.accept, deliver=collected.deliver,
                          origin=Origin(session_id="n:1:mesh-test-1", node="n"), open_link=opener(spec),
                          rng=random.Random(1), heartbeat_s=heartbeat_s)
    task = asyncio.create_task(gateway.run())
    try:
        await asyncio.wait_for(gateway.connected.wait(), 10)
        yield gateway
    finally:
        gateway.close()
        await asyncio.wait_for(task, 10)


async def test_hostile_input_over_tcp_is_counted_and_dropped_and_the_link_goes_on() -> None:
    node = SimulatedNode()
    await node.start()
    collected = Collected()
    tak = TakCodec()
    try:
        async with running(f"meshtastic+tcp://127.0.0.1:{node.port}", collected) as gateway:
            await wait_until(lambda: node.configured == 1, "the handshake")
            good = packet(7, portnums_pb2.ATAK_PLUGIN, tak.encode_v1(PLI, compress=True), 100)
            await node.inject_raw(b"boot log line\r\n" + bytes([0x94, 0xC3, 0xFF, 0xFF]))  # garbage, oversize header
            await node.inject_raw(encode_frame(b"\xff\xff\xff"))  # not a FromRadio
            await node.inject(packet(7, portnums_pb2.ATAK_PLUGIN, b"\x0a\x05\xff", 101))  # malformed TAKPacket
            await node.inject(packet(7, portnums_pb2.ATAK_PLUGIN, b"x" * 300, 102))  # past the LoRa payload
            await node.inject(good)
            await node.inject(good)  # replayed id
            await node.inject(packet(7, portnums_pb2.TEXT_MESSAGE_APP, b"still here", 103))
            await wait_until(lambda: len(collected.accepted) == 2, "the good packets")
            assert [e.type for e in collected.accepted] == ["a-f-G-U-C", "b-t-f"]
            assert collected.accepted[0].detail.callsign == "XRAY"
            assert gateway.dropped["tak_malformed"] == 1
            assert gateway.dropped["oversize"] == 1
            assert gateway.dropped["replay"] == 1
            stats = gateway.statistics()
            assert stats["connected"] is True and stats["accepted"] == 2
    finally:
        await node.stop()


async def test_an_idle_session_gets_heartbeats() -> None:
    node = SimulatedNode()
    await node.start()
    try:
        async with running(f"meshtastic+tcp://127.0.0.1:{node.port}", Collected(), heartbeat_s=0.2):
            await wait_until(lambda: node.heartbeats >= 2, "heartbeats to the node while idle")
    finally:
        await node.stop()


async def test_mqtt_uplink_downlink_through_mosquitto(tmp_path: Path) -> None:
    with mosquitto(tmp_path) as port:
        topic = "msh/EU_868/2/e/LongFast"
        collected = Collected()
        url = f"meshtastic+mqtt://127.0.0.1:{port}/{topic}?key=AQ==&node=!0badcafe"
        async with running(url, collected, bytes_per_s=1000.0) as gateway, \
                aiomqtt.Client("127.0.0.1", port, identifier="radio-gateway") as radio:
            await radio.subscribe(f"{topic}/#")
            text = packet(0xA1B2C3D4, portnums_pb2.TEXT_MESSAGE_APP, b"over the internet", 555)
            right = encode_envelope(text, key=DEFAULT_KEY, channel_id="LongFast", gateway_id="!a1b2c3d4")
            wrong = encode_envelope(packet(0xA1B2C3D4, portnums_pb2.TEXT_MESSAGE_APP, b"secret", 556),
                                    key=os.urandom(16), channel_id="LongFast", gateway_id="!a1b2c3d4")

            async def published() -> bool:
                await radio.publish(f"{topic}/!a1b2c3d4", wrong)
                await radio.publish(f"{topic}/!a1b2c3d4", right)
                return bool(collected.accepted)

            # The gateway's subscription may land after the first publication: publish until it hears.
            await wait_until_async(published)
            assert collected.accepted[0].type == "b-t-f"
            assert b"over the internet" in (collected.accepted[0].raw or b"")
            assert gateway.dropped["wrong_key"] >= 1
            # Downlink: a TAK user's chat, encrypted with the channel key, published under our node id.
            event = parse_event(chat("ANDROID-tak", "HQ", to_uid=None, to_cs=None, text="from the server"), Limits())
            gateway.observe(Envelope(event, Origin(session_id="n:1:tcp-1", node="n"), 0), Audience())
            async for message in radio.messages:
                assert isinstance(message.payload, bytes)
                if not str(message.topic).endswith("/!0badcafe"):
                    continue  # what the test itself published
                envelope, sent = decode_envelope(message.payload, DEFAULT_KEY)
                assert envelope.gateway_id == "!0badcafe" and envelope.channel_id == "LongFast"
                assert str(message.topic) == f"{topic}/!0badcafe"
                assert sent.decoded.portnum == portnums_pb2.ATAK_PLUGIN and getattr(sent, "from") == 0x0BADCAFE
                assert TakCodec().decode_v1(sent.decoded.payload).message == "from the server"
                break


async def wait_until_async(check: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():  # type: ignore[operator]
        assert loop.time() < deadline, "the gateway never heard the broker"
        await asyncio.sleep(0.1)


async def test_serial_transport_on_a_pseudo_terminal() -> None:
    master, slave = pty.openpty()
    device = os.ttyname(slave)
    node = SimulatedNode(users={0x55: ("Valley", "VL")})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    os.set_blocking(master, False)
    read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                     os.fdopen(os.dup(master), "rb", buffering=0))
    write_transport, write_protocol = await loop.connect_write_pipe(
        lambda: asyncio.streams.FlowControlMixin(), os.fdopen(os.dup(master), "wb", buffering=0))
    writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
    serving = asyncio.create_task(node.serve(reader, writer))
    collected = Collected()
    try:
        async with running(f"meshtastic+serial://{device}", collected):
            await wait_until(lambda: node.configured == 1, "the handshake over the serial line")
            pos = mesh_pb2.Position(latitude_i=450_000_000, longitude_i=60_000_000)
            await node.inject(packet(0x55, portnums_pb2.POSITION_APP, pos.SerializeToString(), 9))
            await wait_until(lambda: collected.accepted, "the node position")
            assert collected.accepted[0].uid == "MESH-!00000055"
            assert collected.accepted[0].detail.callsign == "Valley"
    finally:
        serving.cancel()
        read_transport.close()
        write_transport.close()
        os.close(master)
        os.close(slave)
