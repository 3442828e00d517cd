"""Meshtastic gateway end to end: a simulated node (client API over TCP) bridged into a real server.

ATAK plugin PLI and chat in both packet versions reach a PyTAK client with the right callsign,
team and role; a GeoChat from a TAK client reaches the mesh within the channel's byte budget and
the mesh's acknowledgement comes back to its sender as a delivery receipt; mesh traffic is never
sent back into the mesh; a TAK user's position crosses as a plugin PLI; malformed, oversize and
replayed packets are counted on ``/metrics`` and dropped while the mesh goes on; a mesh over MQTT
(a real Mosquitto broker) reaches a PyTAK client and a wrong key is counted.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import re
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from meshtastic.protobuf import portnums_pb2

from rallypoint.connectors.meshtastic.tak import Kind, TakCodec, TakMessage
from tests.support.cot_client import chat, sa
from tests.support.meshtastic import SimulatedNode, mosquitto, packet
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

_EVENT = re.compile(rb"<event[^>]*>.*?</event>", re.S)
BYTES_PER_S = 40.0
BURST = 300


class Picture:
    """What a PyTAK client received, by uid (raw events)."""

    def __init__(self, writer: asyncio.StreamWriter | None = None) -> None:
        self.events: dict[str, list[bytes]] = {}
        self.writer = writer  # the client's own stream, to send from the same session

    async def read(self, reader: asyncio.StreamReader) -> None:
        buf = b""
        while data := await reader.read(65536):
            buf += data
            end = 0
            for match in _EVENT.finditer(buf):
                uid = re.search(rb'uid="([^"]*)"', match.group(0))
                if uid:
                    self.events.setdefault(uid.group(1).decode(), []).append(match.group(0))
                end = match.end()
            buf = buf[end:]

    def find(self, pattern: bytes) -> bytes | None:
        for events in self.events.values():
            for event in events:
                if pattern in event:
                    return event
        return None


@contextlib.asynccontextmanager
async def pytak_picture(port: int) -> AsyncIterator[Picture]:
    parser = configparser.ConfigParser()
    parser["test"] = {"COT_URL": f"tcp://127.0.0.1:{port}"}
    reader, writer = await pytak.protocol_factory(parser["test"])
    picture = Picture(writer)
    task = asyncio.create_task(picture.read(reader))
    try:
        yield picture
    finally:
        task.cancel()
        writer.close()


@pytest.fixture
async def node() -> AsyncIterator[SimulatedNode]:
    sim = SimulatedNode(users={0x11223344: ("Ridge Relay", "RR")})
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def mesh_server(data_dir: Path, node: SimulatedNode) -> Iterator[ServerProcess]:
    config = data_dir.parent / "mesh.toml"
    config.write_text(
        "[[meshtastic]]\n"
        f'url = "meshtastic+tcp://127.0.0.1:{node.port}"\nname = "field"\n'
        f"bytes_per_s = {BYTES_PER_S}\nburst_bytes = {BURST}\n"
    )
    with ServerProcess(data_dir, "--config", str(config)) as proc:
        proc.wait_for_log("meshtastic connected", mesh="field")
        yield proc


async def test_plugin_pli_and_chat_in_both_versions_reach_a_pytak_client(
    mesh_server: ServerProcess, node: SimulatedNode,
) -> None:
    from rallypoint.connectors.meshtastic.dictionaries import bundled

    tak = TakCodec(bundled())  # V2 frames compressed with the plugin's dictionary, as it sends them
    pli1 = TakMessage(kind=Kind.PLI, uid="ANDROID-v1", callsign="VIPER", team="Dark Blue", role="Team Lead",
                      battery=80, lat=48.85, lon=2.29, alt=30.0, speed=1.5, course=90.0)
    pli2 = TakMessage(kind=Kind.PLI, uid="ANDROID-v2", callsign="COBRA", team="Red", role="Medic",
                      battery=55, lat=48.86, lon=2.30, alt=31.0)
    chat1 = TakMessage(kind=Kind.CHAT, uid="ANDROID-v1", callsign="VIPER", message="first version says hi")
    chat2 = TakMessage(kind=Kind.CHAT, uid="ANDROID-v2", callsign="COBRA", message="second version copies")
    async with pytak_picture(mesh_server.ports["cot"]) as picture:
        async def send_all() -> None:
            for port, payload in (
                (portnums_pb2.ATAK_PLUGIN, tak.encode_v1(pli1, compress=True)),
                (portnums_pb2.ATAK_PLUGIN_V2, tak.encode_v2(pli2)),
                (portnums_pb2.ATAK_PLUGIN, tak.encode_v1(chat1, compress=True)),
                (portnums_pb2.ATAK_PLUGIN_V2, tak.encode_v2(chat2, dict_id=0)),
            ):
                await node.inject(packet(0x11223344, port, payload, node.next_id()))

        async def all_seen() -> bool:
            await send_all()  # the PyTAK session may register after the first packets
            return all(picture.find(p) for p in (b"ANDROID-v1", b"ANDROID-v2", b"first version", b"second version"))

        deadline = time.monotonic() + 20
        while not await all_seen():
            assert time.monotonic() < deadline, f"not received: {list(picture.events)}"
            await asyncio.sleep(0.1)
        v1 = picture.events["ANDROID-v1"][-1]
        assert b'callsign="VIPER"' in v1 and b'name="Dark Blue"' in v1 and b'role="Team Lead"' in v1
        v2 = picture.events["ANDROID-v2"][-1]
        assert b'callsign="COBRA"' in v2 and b'name="Red"' in v2 and b'role="Medic"' in v2
        said = picture.find(b"first version says hi")
        assert said is not None and b'type="b-t-f"' in said and b'senderCallsign="VIPER"' in said
        assert b'chatroom="All Chat Rooms"' in said
        said2 = picture.find(b"second version copies")
        assert said2 is not None and b'type="b-t-f"' in said2 and b'senderCallsign="COBRA"' in said2
    # Nothing that came from the mesh went back into it.
    assert not [p for p in node.sent if b"ANDROID-v" in p.decoded.payload]


async def test_geochat_from_pytak_reaches_the_mesh_within_budget_with_a_delivery_receipt(
    mesh_server: ServerProcess, node: SimulatedNode,
) -> None:
    tak = TakCodec()
    parser = configparser.ConfigParser()
    parser["test"] = {"COT_URL": f"tcp://127.0.0.1:{mesh_server.ports['cot']}"}
    reader, writer = await pytak.protocol_factory(parser["test"])
    picture = Picture()
    reading = asyncio.create_task(picture.read(reader))
    try:
        writer.write(sa("ANDROID-tak", "HQ-ONE"))
        started = time.monotonic()
        texts = [f"message {i} from the command post" for i in range(6)]
        for text in texts:
            writer.write(chat("ANDROID-tak", "HQ-ONE", to_uid=None, to_cs=None, text=text))
        await writer.drain()

        def chats_on_mesh() -> list[str]:
            out = []
            for p in node.sent:
                if p.decoded.portnum == portnums_pb2.ATAK_PLUGIN:
                    msg = tak.decode_v1(p.decoded.payload)
                    if msg.kind is Kind.CHAT:
                        out.append(msg.message)
            return out

        await wait_until(lambda: len(chats_on_mesh()) == len(texts), "every chat on the mesh", timeout=30)
        elapsed = time.monotonic() - started
        assert chats_on_mesh() == texts  # in order, each once
        sent_bytes = sum(len(p.decoded.payload) + 16 for p in node.sent)
        assert sent_bytes <= BURST + BYTES_PER_S * elapsed + 253  # the budget, plus one packet in flight
        first = tak.decode_v1(node.sent[0].decoded.payload)
        assert first.callsign == "HQ-ONE"
        # The node acknowledged each chat: its sender gets ATAK's delivery receipt.
        await wait_until(lambda: picture.find(b'type="b-t-f-d"'), "a delivery receipt at the sender")
        # The TAK user's own position crossed as a plugin PLI (it was queued behind the chats).
        await wait_until(lambda: any(
            p.decoded.portnum == portnums_pb2.ATAK_PLUGIN and tak.decode_v1(p.decoded.payload).kind is Kind.PLI
            for p in node.sent), "the TAK user's position on the mesh", timeout=30)
    finally:
        reading.cancel()
        writer.close()


async def test_hostile_mesh_input_is_counted_on_metrics_and_the_mesh_goes_on(
    mesh_server: ServerProcess, node: SimulatedNode,
) -> None:
    tak = TakCodec()
    good = packet(0x11223344, portnums_pb2.ATAK_PLUGIN, tak.encode_v1(
        TakMessage(kind=Kind.PLI, uid="ANDROID-ok", callsign="STEADY", lat=10.0, lon=20.0), compress=True), 0x77)
    await wait_until(lambda: node.configured >= 1 and node.writers, "the gateway's session with the node")
    await node.inject_raw(b"\x94\xc3\xff\xff garbage between frames")
    await node.inject(packet(0x11223344, portnums_pb2.ATAK_PLUGIN, b"\x0a\x05\xff", 0x71))  # truncated protobuf
    await node.inject(packet(0x11223344, portnums_pb2.ATAK_PLUGIN, bytes(300), 0x72))  # oversize
    await node.inject(good)
    await node.inject(good)  # replayed

    def metric(line: str) -> bool:
        text = httpx.get(f"http://127.0.0.1:{mesh_server.ports['http']}/metrics").text
        return line in text

    for line in (
        'rallypoint_mesh_dropped_total{mesh="field",reason="tak_malformed"} 1.0',
        'rallypoint_mesh_dropped_total{mesh="field",reason="oversize"} 1.0',
        'rallypoint_mesh_dropped_total{mesh="field",reason="replay"} 1.0',
        'rallypoint_mesh_accepted_total{mesh="field"} 1.0',
        'rallypoint_mesh_connected{mesh="field"} 1.0',
    ):
        await wait_until(lambda line=line: metric(line), line)  # type: ignore[misc]
    mesh_server.wait_for_log("meshtastic packet dropped", mesh="field", reason="oversize")


async def test_mqtt_mesh_through_a_real_server_and_broker(data_dir: Path, tmp_path: Path) -> None:
    import aiomqtt

    from rallypoint.connectors.meshtastic.crypto import DEFAULT_KEY
    from rallypoint.connectors.meshtastic.mqtt_codec import encode_envelope

    topic = "msh/EU_868/2/e/LongFast"
    with mosquitto(tmp_path) as port, ServerProcess(
        data_dir, "--feed", f"meshtastic+mqtt://127.0.0.1:{port}/{topic}?key=AQ==&name=internet",
    ) as server:
        server.wait_for_log("meshtastic connected", mesh="internet")
        wrong = encode_envelope(packet(0xA1B2C3D4, portnums_pb2.TEXT_MESSAGE_APP, b"x", 902), key=bytes(16),
                                channel_id="LongFast", gateway_id="!a1b2c3d4")
        async with pytak_picture(server.ports["cot"]) as picture, \
                aiomqtt.Client("127.0.0.1", port, identifier="another-gateway") as radio:
            deadline = time.monotonic() + 20
            packet_id = 1000
            while not picture.find(b"relayed over the internet"):
                assert time.monotonic() < deadline, "the MQTT chat never reached the PyTAK client"
                # Sent again (a new packet each time: a repeated id is a replay) until the server's
                # subscription and the PyTAK session are both up.
                packet_id += 1
                text = packet(0xA1B2C3D4, portnums_pb2.TEXT_MESSAGE_APP, b"relayed over the internet", packet_id)
                right = encode_envelope(text, key=DEFAULT_KEY, channel_id="LongFast", gateway_id="!a1b2c3d4")
                await radio.publish(f"{topic}/!a1b2c3d4", wrong)
                await radio.publish(f"{topic}/!a1b2c3d4", right)
                await asyncio.sleep(0.2)
        said = picture.find(b"relayed over the internet")
        assert said is not None and b'uid="MESH-!a1b2c3d4"' in said and b'type="b-t-f"' in said
        metrics = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics").text
        assert 'rallypoint_mesh_dropped_total{mesh="internet",reason="wrong_key"}' in metrics


async def test_drawn_shapes_and_ranging_lines_cross_both_ways_with_their_geometry(
    mesh_server: ServerProcess, node: SimulatedNode,
) -> None:
    """A polygon and a range-and-bearing line from a TAK client reach the mesh as V2 packets that decode
    to the same geometry; a circle drawn on the mesh reaches the TAK client with its radius."""
    from lxml import etree

    from rallypoint.connectors.meshtastic.dictionaries import bundled
    from rallypoint.connectors.meshtastic.packets import MeshInbound
    from tests.support.cot_client import cot

    tak = TakCodec(bundled())  # what the plugin at the other end reads with
    corners = [(48.8571, 2.2931), (48.8583, 2.2962), (48.8561, 2.2979), (48.8549, 2.2948)]
    polygon = cot("poly-1", "u-d-p", how="h-e", lat=48.8566, lon=2.2955, detail="".join(
        f'<link point="{a},{b}"/>' for a, b in corners) + '<strokeColor value="-65536"/><contact callsign="AO 1"/>')
    rab = cot("rab-1", "u-rb-a", how="h-e", lat=48.8566, lon=2.2955, detail=(
        '<link uid="anchor-1" relation="p-p" type="b-m-p-w" point="48.8601,2.3012"/>'
        '<range value="532.75"/><bearing value="47.5"/><contact callsign="RB 1"/>'))
    async with pytak_picture(mesh_server.ports["cot"]) as picture:
        assert picture.writer is not None
        picture.writer.write(polygon + rab)
        await picture.writer.drain()

        def on_mesh(uid: str) -> list[bytes]:
            return [p.decoded.payload for p in node.sent if p.decoded.portnum == portnums_pb2.ATAK_PLUGIN_V2
                    and tak.unpack_v2(p.decoded.payload).uid == uid]

        await wait_until(lambda: on_mesh("poly-1") and on_mesh("rab-1"), "the shape and the line on the mesh",
                         timeout=30)
        inbound = MeshInbound(tak)
        (poly_back,) = inbound.packet(packet(5, portnums_pb2.ATAK_PLUGIN_V2, on_mesh("poly-1")[0], 1), 0).events
        links = etree.fromstring(b"<d>" + poly_back.detail.xml + b"</d>").findall("link")
        got = [tuple(float(x) for x in str(link.get("point")).split(",")) for link in links]
        assert got == [pytest.approx(c, abs=1e-7) for c in corners]
        (rab_back,) = inbound.packet(packet(5, portnums_pb2.ATAK_PLUGIN_V2, on_mesh("rab-1")[0], 2), 0).events
        d = etree.fromstring(b"<d>" + rab_back.detail.xml + b"</d>")
        assert float(d.find("range").get("value")) == pytest.approx(532.75, abs=0.01)  # type: ignore[union-attr]
        assert float(d.find("bearing").get("value")) == pytest.approx(47.5, abs=0.01)  # type: ignore[union-attr]
        assert d.find("link").get("point") == "48.8601000,2.3012000"  # type: ignore[union-attr]
        sent_bytes = sum(len(p.decoded.payload) + 16 for p in node.sent)
        assert all(len(p.decoded.payload) <= 233 for p in node.sent) and sent_bytes > 0

        # A circle drawn by a plugin user reaches the TAK client as a circle.
        from meshtastic.protobuf import atak_pb2

        circle = atak_pb2.TAKPacketV2(uid="circle-mesh", callsign="Mesh circle", cot_type_id=atak_pb2.CotType_u_d_c_c,
                                      latitude_i=488_600_000, longitude_i=23_000_000)
        circle.shape.kind = atak_pb2.DrawnShape.Kind_Circle
        circle.shape.major_cm = circle.shape.minor_cm = 25_050
        circle.shape.angle_deg = 360
        circle.shape.stroke_argb = 0xFFFF0000
        circle.shape.style = atak_pb2.DrawnShape.StyleMode_StrokeOnly

        async def circle_seen() -> bytes | None:
            await node.inject(packet(0x11223344, portnums_pb2.ATAK_PLUGIN_V2, tak.pack_v2(circle), node.next_id()))
            return picture.find(b'uid="circle-mesh"')

        deadline = time.monotonic() + 20
        while (seen := await circle_seen()) is None:
            assert time.monotonic() < deadline, "the mesh circle never reached the TAK client"
            await asyncio.sleep(0.1)  # resent until the client's session is registered
        assert b'type="u-d-c-c"' in seen and b'major="250.50"' in seen and b'value="-65536"' in seen
        # It did not go back into the mesh.
        assert not on_mesh("circle-mesh")
