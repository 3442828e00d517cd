"""Meshtastic codecs without I/O: framing and resync, channel crypto, both plugin packet versions,
plain node packets, hostile input (malformed, oversize, replayed, wrong key), the channel budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zstandard
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from rallypoint.config import MeshtasticConfig
from rallypoint.connectors.meshtastic.budget import HEADER_BYTES, ChannelBudget, Lane, Outgoing
from rallypoint.connectors.meshtastic.client import MyNode, NodeSeen, RadioClient, Ready, Received
from rallypoint.connectors.meshtastic.crypto import DEFAULT_KEY, crypt, expand_key, key_from_base64
from rallypoint.connectors.meshtastic.dictionaries import bundled
from rallypoint.connectors.meshtastic.framing import MAX_FRAME, FrameDecoder, encode_frame
from rallypoint.connectors.meshtastic.mesh_cot import from_mesh, to_tak_message
from rallypoint.connectors.meshtastic.mqtt_codec import decode_envelope, encode_envelope
from rallypoint.connectors.meshtastic.packets import MeshInbound
from rallypoint.connectors.meshtastic.spec import MeshLinkKind, mesh_spec
from rallypoint.connectors.meshtastic.tak import Kind, TakCodec, TakMessage
from rallypoint.errors import ConfigError, RemoteProtocolError
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from tests.support.meshtastic import packet

NOW = 1_700_000_000_000
PLI = TakMessage(kind=Kind.PLI, uid="ANDROID-0123", callsign="VIPER", team="Dark Blue", role="Team Lead",
                 battery=77, lat=48.8584, lon=2.2945, alt=35.0, speed=1.0, course=270.0)
CHAT = TakMessage(kind=Kind.CHAT, uid="ANDROID-0123", callsign="VIPER", message="Contact north ridge",
                  to="All Chat Rooms")


def test_frames_survive_garbage_split_reads_and_oversize_headers() -> None:
    one, two = encode_frame(b"\x08\x01"), encode_frame(b"x" * 40)
    decoder = FrameDecoder()
    stream = b"DEBUG | boot\r\n" + one + b"\x94\x00" + bytes([0x94, 0xC3, 0x7F, 0xFF]) + two
    for i in range(0, len(stream), 3):  # three bytes per read
        decoder.receive_data(stream[i:i + 3])
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    assert frames == [b"\x08\x01", b"x" * 40]
    assert decoder.oversize == 1 and decoder.garbage_bytes > 0
    with pytest.raises(ValueError, match="at most 512"):
        encode_frame(b"x" * (MAX_FRAME + 1))


def test_client_handshake_events_and_packet_bytes() -> None:
    client = RadioClient()
    assert client.start().startswith(b"\xc3" * 32)
    frames = b"".join(encode_frame(m.SerializeToString()) for m in (
        mesh_pb2.FromRadio(my_info=mesh_pb2.MyNodeInfo(my_node_num=7)),
        mesh_pb2.FromRadio(node_info=mesh_pb2.NodeInfo(num=9, user=mesh_pb2.User(long_name="Base"))),
        mesh_pb2.FromRadio(config_complete_id=client.config_id),
        mesh_pb2.FromRadio(packet=packet(9, portnums_pb2.TEXT_MESSAGE_APP, b"hi", 5)),
    ))
    events = client.receive_data(encode_frame(b"\xff\xff\xff") + frames)  # a malformed frame first
    assert [type(e) for e in events] == [MyNode, NodeSeen, Ready, Received]
    assert client.malformed == 1
    sent = FrameDecoder()
    sent.receive_data(client.packet(port=72, payload=b"abc", packet_id=11, want_ack=True))
    to_radio = mesh_pb2.ToRadio.FromString(sent.next_frame() or b"")
    assert to_radio.packet.decoded.payload == b"abc" and to_radio.packet.want_ack


def test_default_key_expansion_and_ctr_round_trip() -> None:
    assert key_from_base64("AQ==") == DEFAULT_KEY
    assert expand_key(b"\x02")[-1] == DEFAULT_KEY[-1] + 1
    assert expand_key(b"") == b"" and expand_key(b"\x00") == b""
    key = os.urandom(32)
    data = b"position report"
    assert crypt(key, 1234, 0xA1B2C3D4, crypt(key, 1234, 0xA1B2C3D4, data)) == data
    assert crypt(key, 1235, 0xA1B2C3D4, data) != crypt(key, 1234, 0xA1B2C3D4, data)  # the id is in the nonce


def test_mqtt_envelope_round_trip_and_wrong_key_refused() -> None:
    p = packet(0xA1B2C3D4, portnums_pb2.TEXT_MESSAGE_APP, b"hello mesh", 77)
    body = encode_envelope(p, key=DEFAULT_KEY, channel_id="LongFast", gateway_id="!a1b2c3d4")
    assert b"hello mesh" not in body  # encrypted on the wire
    envelope, decoded = decode_envelope(body, DEFAULT_KEY)
    assert decoded.decoded.payload == b"hello mesh" and envelope.channel_id == "LongFast"
    refused = 0
    for _ in range(50):
        with pytest.raises(RemoteProtocolError) as err:
            decode_envelope(body, os.urandom(16))
        refused += err.value.reason == "wrong_key"
    assert refused == 50
    with pytest.raises(RemoteProtocolError, match="malformed"):
        decode_envelope(b"\xff\xff garbage", DEFAULT_KEY)
    with pytest.raises(RemoteProtocolError, match="oversize"):
        decode_envelope(b"\x00" * 5000, DEFAULT_KEY)


@pytest.mark.parametrize("compress", [False, True])
def test_tak_v1_round_trip(compress: bool) -> None:
    tak = TakCodec()
    assert tak.decode_v1(tak.encode_v1(PLI, compress=compress)) == PLI
    chat = tak.decode_v1(tak.encode_v1(CHAT, compress=compress))
    assert (chat.kind, chat.message, chat.callsign, chat.to) == (Kind.CHAT, CHAT.message, "VIPER", "All Chat Rooms")


def test_tak_v1_as_the_plugin_sends_it_compressed_strings_are_not_utf8() -> None:
    import unishox2

    raw, _ = unishox2.compress("VIPER-ÉCLAIR")
    # Built by hand with the generated class's field numbers: contact.callsign holds compressed bytes.
    contact = b"\x0a" + bytes([len(raw)]) + bytes(raw)
    wire = b"\x08\x01" + b"\x12" + bytes([len(contact)]) + contact + b"\x2a\x0a\x0d\x00\x00\x00\x00\x15\x00\x00\x00\x00"
    assert tak_decode(wire).callsign == "VIPER-ÉCLAIR"


def tak_decode(wire: bytes) -> TakMessage:
    return TakCodec().decode_v1(wire)


def test_tak_v2_round_trip_with_and_without_dictionary() -> None:
    plain = TakCodec()
    bare = plain.encode_v2(PLI)
    assert bare[0] == 0xFF and plain.decode_v2(bare) == PLI  # no dictionary: the protobuf uncompressed
    shipped = TakCodec(bundled())
    packed = shipped.encode_v2(PLI)
    assert len(packed) <= len(bare) and shipped.decode_v2(packed) == PLI  # never longer than the bare form
    chat = shipped.encode_v2(CHAT)
    assert chat[0] == 0 and shipped.decode_v2(chat).message == CHAT.message  # the non-aircraft dictionary
    assert shipped.decode_v2(bytes([chat[0] | 0xC0]) + chat[1:]).message == CHAT.message  # reserved bits ignored
    with_dict = TakCodec({5: bundled()[0]})  # a dictionary configured under another id
    payload = with_dict.encode_v2(CHAT, dict_id=5)
    assert payload[0] & 0x3F == 5
    assert with_dict.decode_v2(payload).message == CHAT.message
    with pytest.raises(RemoteProtocolError) as err:
        plain.decode_v2(payload)  # a dictionary we do not have
    assert err.value.reason == "v2_dictionary"
    bomb = b"\x00" + zstandard.ZstdCompressor().compress(b"\x00" * 5_000_000)
    assert len(bomb) <= 237
    with pytest.raises(RemoteProtocolError, match="oversize"):
        shipped.decode_v2(bomb)
    with pytest.raises(RemoteProtocolError) as err:
        shipped.decode_v2(b"\x00not a zstd frame")
    assert err.value.reason == "tak_malformed"


def test_plain_node_position_text_and_names_become_cot() -> None:
    inbound = MeshInbound(TakCodec())
    inbound.learn_user(0xA1B2C3D4, mesh_pb2.User(long_name="Ridge Relay", short_name="RR"))
    pos = mesh_pb2.Position(latitude_i=487_000_000, longitude_i=22_000_000, altitude=120)
    (event,) = inbound.packet(packet(0xA1B2C3D4, portnums_pb2.POSITION_APP, pos.SerializeToString(), 1), NOW).events
    assert event.uid == "MESH-!a1b2c3d4" and event.detail.callsign == "Ridge Relay"
    assert abs(event.point.lat - 48.7) < 1e-6 and from_mesh(event)
    (chat,) = inbound.packet(packet(0xA1B2C3D4, portnums_pb2.TEXT_MESSAGE_APP, b"all good", 2), NOW).events
    assert chat.type == "b-t-f" and chat.detail.chat is not None and chat.detail.chat.chatroom == "All Chat Rooms"
    parsed = parse_event(chat.raw or b"", Limits())  # what receivers get parses back
    assert parsed.detail.chat is not None and parsed.detail.chat.sender_callsign == "Ridge Relay"


def test_hostile_packets_are_refused_with_reasons() -> None:
    inbound = MeshInbound(TakCodec(), ids_per_sender=4)
    wire = TakCodec().encode_v1(PLI)
    inbound.packet(packet(1, portnums_pb2.ATAK_PLUGIN, wire, 10), NOW)

    def reason(p: mesh_pb2.MeshPacket) -> str:
        with pytest.raises(RemoteProtocolError) as err:
            inbound.packet(p, NOW)
        return err.value.reason

    assert reason(packet(1, portnums_pb2.ATAK_PLUGIN, wire, 10)) == "replay"
    assert reason(packet(1, portnums_pb2.ATAK_PLUGIN, b"x" * 300, 11)) == "oversize"
    assert reason(packet(1, portnums_pb2.ATAK_PLUGIN, b"\xff\xff\xff\xff", 12)) == "tak_malformed"
    assert reason(packet(1, portnums_pb2.POSITION_APP, b"\x0d\x01", 13)) == "malformed"
    assert reason(packet(1, portnums_pb2.TEXT_MESSAGE_APP, b"\xff\xfe", 14)) == "malformed"
    assert reason(packet(1, portnums_pb2.ATAK_PLUGIN_V2, b"\x00not zstd", 15)) == "v2_dictionary"  # none here
    # The replay cache is bounded per sender: an id far in the past is forgotten, not kept forever.
    for i in range(20, 30):
        inbound.packet(packet(1, portnums_pb2.TEXT_MESSAGE_APP, b"x", i), NOW)
    inbound.packet(packet(1, portnums_pb2.TEXT_MESSAGE_APP, b"x", 10), NOW)


def test_outbound_messages_from_cot() -> None:
    sa = parse_event(
        b'<event version="2.0" uid="ANDROID-1" type="a-f-G-U-C" how="m-g" time="2024-01-01T00:00:00Z"'
        b' start="2024-01-01T00:00:00Z" stale="2024-01-01T00:10:00Z"><point lat="1.5" lon="2.5" hae="10"'
        b' ce="5" le="5"/><detail><contact callsign="ALPHA"/><__group name="Red" role="Medic"/>'
        b'<takv platform="ATAK-CIV"/></detail></event>', Limits())
    msg = to_tak_message(sa)
    assert msg is not None and (msg.callsign, msg.team, msg.role, msg.lat) == ("ALPHA", "Red", "Medic", 1.5)


def test_budget_orders_lanes_coalesces_positions_and_keeps_to_the_rate() -> None:
    budget = ChannelBudget(bytes_per_s=100.0, burst_bytes=300)
    for _ in range(5):
        budget.offer(Outgoing(port=72, payload=bytes(50), lane=Lane.POSITION, key="u1"))
    budget.offer(Outgoing(port=72, payload=bytes(50), lane=Lane.CHAT, key="c1"))
    budget.offer(Outgoing(port=72, payload=bytes(50), lane=Lane.EMERGENCY, key="e1"))
    assert budget.coalesced == 4 and budget.pending() == 3
    order = []
    now = 0.0
    while budget.pending():
        item = budget.take(now)
        if item is None:
            now += budget.wait_s(now) or 0.0
            continue
        order.append(item.lane)
    assert order == [Lane.EMERGENCY, Lane.CHAT, Lane.POSITION]
    assert budget.sent_bytes == 3 * (50 + HEADER_BYTES)


def test_spec_urls() -> None:
    tcp = mesh_spec(MeshtasticConfig(url="meshtastic+tcp://10.0.0.5"))
    assert (tcp.kind, tcp.port) == (MeshLinkKind.TCP, 4403)
    mqtt = mesh_spec(MeshtasticConfig(url="meshtastic+mqtt://broker/msh/EU_868/2/e/LongFast?key=AQ==&node=!00c0ffee"))
    assert (mqtt.channel_name, mqtt.key, mqtt.node_num) == ("LongFast", DEFAULT_KEY, 0xC0FFEE)
    serial = mesh_spec(MeshtasticConfig(url="meshtastic+serial:///dev/ttyUSB0?baud=921600"))
    assert (serial.device, serial.baud) == ("/dev/ttyUSB0", 921600)
    for bad, words in [
        ("meshtastic+udp://x", "unknown transport"),
        ("meshtastic+mqtt://broker/not/a/topic", "msh/REGION/2/e/CHANNEL"),
        ("meshtastic+mqtt://broker/msh/EU/2/e/LongFast?key=abc", "not base64"),
        ("meshtastic+tcp://host?key=AQ==", "unknown parameter"),
    ]:
        with pytest.raises(ConfigError, match=words):
            mesh_spec(MeshtasticConfig(url=bad))
    with pytest.raises(ConfigError, match="burst_bytes"):
        mesh_spec(MeshtasticConfig(url="meshtastic+tcp://h", burst_bytes=100))


def test_spec_ships_the_plugins_dictionaries_and_a_configured_file_replaces_one(tmp_path: Path) -> None:
    shipped = mesh_spec(MeshtasticConfig(url="meshtastic+tcp://h"))
    assert sorted(shipped.dictionaries) == [0, 1] and len(shipped.dictionaries[0]) == 16384
    assert "aircraft" not in shipped.send and {"shape", "rab", "marker", "route"} <= shipped.send
    own = tmp_path / "d.zstd"
    own.write_bytes(b"a-f-G-U-C callsign uid ANDROID- " * 20)  # raw content serves as a dictionary too
    spec = mesh_spec(MeshtasticConfig(url="meshtastic+tcp://h", v2_dictionaries={1: str(own), 7: str(own)},
                                      send=("pli", "aircraft")))
    assert spec.dictionaries[1] == own.read_bytes() and 7 in spec.dictionaries and len(spec.dictionaries[0]) == 16384
    assert spec.send == frozenset({"pli", "aircraft"})
    with pytest.raises(ConfigError, match="0 to 63"):
        mesh_spec(MeshtasticConfig(url="meshtastic+tcp://h", v2_dictionaries={64: str(own)}))
    damaged = tmp_path / "damaged.zstd"
    damaged.write_bytes(b"\x37\xa4\x30\xec" + bytes(200))  # a trained dictionary's magic, then nothing usable
    with pytest.raises(ConfigError, match="not a zstd dictionary"):
        mesh_spec(MeshtasticConfig(url="meshtastic+tcp://h", v2_dictionaries={2: str(damaged)}))
    with pytest.raises(ConfigError, match="cannot read V2 dictionary"):
        mesh_spec(MeshtasticConfig(url="meshtastic+tcp://h", v2_dictionaries={2: str(tmp_path / "absent")}))
    with pytest.raises(ConfigError, match="shape, rab or aircraft"):
        mesh_spec(MeshtasticConfig(url="meshtastic+tcp://h", send=("video",)))
