"""Markers and routes in TAKPacketV2 form: CoT to packet to CoT, with the shipped dictionary or uncompressed."""

from __future__ import annotations

import zstandard
from meshtastic.protobuf import atak_pb2, portnums_pb2

from rallypoint.connectors.meshtastic.budget import Lane
from rallypoint.connectors.meshtastic.dictionaries import NON_AIRCRAFT, UNCOMPRESSED, bundled
from rallypoint.connectors.meshtastic.mesh_cot import from_mesh
from rallypoint.connectors.meshtastic.outbound import outgoing
from rallypoint.connectors.meshtastic.packets import MAX_SEND_PAYLOAD, MeshInbound
from rallypoint.connectors.meshtastic.tak import TakCodec
from rallypoint.connectors.meshtastic.v2_items import MAX_LINKS, marker_packet, route_packet
from rallypoint.model.cot import CotEvent
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.routing.envelope import Envelope, Origin
from tests.support.meshtastic import packet

NOW = 1_700_000_000_000
T = "2023-11-14T22:13:20.000Z"
STALE = "2023-11-15T22:13:20.000Z"
SEND = frozenset({"pli", "chat", "emergency", "marker", "route"})


def event(kind: str, detail: str, lat: float = 38.856, lon: float = -77.056) -> CotEvent:
    return parse_event((
        f'<event version="2.0" uid="item-1" type="{kind}" how="h-g-i-g-o" time="{T}" start="{T}" stale="{STALE}">'
        f'<point lat="{lat}" lon="{lon}" hae="9999999.0" ce="9999999.0" le="9999999.0"/>'
        f"<detail>{detail}</detail></event>"
    ).encode(), Limits())


SPOT = event("b-m-p-s-m", '<status readiness="true"/><link uid="ANDROID-1" type="a-f-G-U-C" relation="p-p"/>'
                          '<contact callsign="R 1"/><remarks>Rally here</remarks><color argb="-65536"/>'
                          '<usericon iconsetpath="COT_MAPPING_SPOTMAP/b-m-p-s-m/-65536"/>')


def route(points: int) -> CotEvent:
    links = "".join(f'<link uid="wp-{i}" callsign="CP{i}" type="b-m-p-w" point="{38.8 + i * 0.001},{-77.0 - i * 0.002}"'
                    f' relation="c"/>' for i in range(points))
    attrs = '<link_attr method="Walking" direction="Infil" prefix="CP"/><contact callsign="Route 1"/>'
    return event("b-m-r", links + attrs)


def codec() -> TakCodec:
    samples = [atak_pb2.TAKPacketV2(uid=f"item-{i}", callsign=f"M{i}").SerializeToString() for i in range(300)]
    return TakCodec({1: zstandard.train_dictionary(1024, samples).as_bytes()})


def test_marker_round_trip_through_the_mesh() -> None:
    tak = codec()
    payload = tak.pack_v2(marker_packet(SPOT, NOW), dict_id=1)
    (back,) = MeshInbound(tak).packet(packet(9, portnums_pb2.ATAK_PLUGIN_V2, payload, 1), NOW).events
    assert (back.uid, back.type, back.detail.callsign) == ("item-1", "b-m-p-s-m", "R 1")
    assert abs(back.point.lat - 38.856) < 1e-6 and from_mesh(back)
    raw = back.raw or b""
    assert b'argb="-65536"' in raw and b"COT_MAPPING_SPOTMAP" in raw and b"Rally here" in raw


def test_route_round_trip_with_delta_points_and_truncation() -> None:
    tak = codec()
    p = route_packet(route(20), NOW)
    assert p is not None and p.route.truncated and len(p.route.links) == MAX_LINKS
    payload = tak.pack_v2(route_packet(route(6), NOW) or p, dict_id=1)
    (back,) = MeshInbound(tak).packet(packet(9, portnums_pb2.ATAK_PLUGIN_V2, payload, 2), NOW).events
    assert back.type == "b-m-r" and back.detail.callsign == "Route 1"
    raw = back.raw or b""
    assert raw.count(b'type="b-m-p-w"') == 6 and b'callsign="CP5"' in raw
    assert b'point="38.8050000,-77.0100000"' in raw  # the 6th point, rebuilt from its offsets
    assert b'method="Walking"' in raw and b'direction="Infil"' in raw
    # A long route is made to fit one packet: names dropped first, then its last points.
    env = Envelope(route(20), Origin(session_id="tcp-1", node="n"), NOW)
    item = outgoing(env, tak=tak, send=SEND, send_groups=frozenset(), own_session="mesh")
    assert item is not None and len(item.payload) <= MAX_SEND_PAYLOAD
    sent = tak.unpack_v2(item.payload)
    assert sent.route.truncated and 2 <= len(sent.route.links) <= MAX_LINKS


def test_markers_and_routes_cross_with_the_shipped_dictionary_or_uncompressed() -> None:
    tak = TakCodec(bundled())
    env = Envelope(SPOT, Origin(session_id="tcp-1", node="n"), NOW)
    item = outgoing(env, tak=tak, send=SEND, send_groups=frozenset(), own_session="mesh")
    assert item is not None and item.port == portnums_pb2.ATAK_PLUGIN_V2 and item.lane is Lane.POSITION
    assert item.payload[0] == NON_AIRCRAFT and len(item.payload) <= MAX_SEND_PAYLOAD
    assert tak.unpack_v2(item.payload).marker.iconset.startswith("COT_MAPPING_SPOTMAP")
    # Without the dictionary (an installation missing the file): the bare protobuf after 0xFF.
    bare = outgoing(env, tak=TakCodec(), send=SEND, send_groups=frozenset(), own_session="mesh")
    assert bare is not None and bare.payload[0] == UNCOMPRESSED
    assert len(bare.payload) > len(item.payload)  # the dictionary earns its keep
    assert tak.unpack_v2(bare.payload) == tak.unpack_v2(item.payload)
    env = Envelope(route(5), Origin(session_id="tcp-1", node="n"), NOW)
    item = outgoing(env, tak=tak, send=SEND, send_groups=frozenset(), own_session="mesh")
    assert item is not None and tak.unpack_v2(item.payload).route.links[4].callsign == "CP4"
    assert outgoing(env, tak=tak, send=frozenset({"pli"}), send_groups=frozenset(), own_session="mesh") is None


def test_emergency_goes_first_as_a_chat_line_and_mesh_traffic_never_returns() -> None:
    tak = TakCodec()
    alert = parse_event(
        b'<event version="2.0" uid="u-911" type="b-a-o-tbl" how="m-g" time="2023-11-14T22:13:20.000Z"'
        b' start="2023-11-14T22:13:20.000Z" stale="2023-11-14T22:23:20.000Z"><point lat="42.389128"'
        b' lon="-71.147716" hae="6.1" ce="6.0" le="9999999.0"/><detail><link uid="ANDROID-1" type="a-f-G-U-C"'
        b' relation="p-p"/><contact callsign="BOB-Alert"/><emergency type="911 Alert">BOB</emergency></detail></event>',
        Limits())
    item = outgoing(Envelope(alert, Origin(session_id="tcp-1", node="n"), NOW), tak=tak, send=SEND,
                    send_groups=frozenset(), own_session="mesh")
    assert item is not None and item.lane is Lane.EMERGENCY and item.want_ack
    assert tak.decode_v1(item.payload).message == "EMERGENCY 911 Alert: BOB-Alert at 42.38913,-71.14772"
    # From the gateway's own session, or marked as from a mesh: never sent into the mesh.
    assert outgoing(Envelope(alert, Origin(session_id="mesh", node="n"), NOW), tak=tak, send=SEND,
                    send_groups=frozenset(), own_session="mesh") is None
    tak_v2 = codec()
    (from_radio,) = MeshInbound(tak_v2).packet(
        packet(9, portnums_pb2.ATAK_PLUGIN_V2, tak_v2.pack_v2(marker_packet(SPOT, NOW), dict_id=1), 5), NOW).events
    assert outgoing(Envelope(from_radio, Origin(session_id="tcp-1", node="n"), NOW), tak=tak_v2, send=SEND,
                    send_groups=frozenset(), own_session="mesh") is None
    # Groups: only traffic of the configured send groups crosses.
    assert outgoing(Envelope(alert, Origin(session_id="tcp-1", node="n", groups=frozenset({"Blue"})), NOW),
                    tak=tak, send=SEND, send_groups=frozenset({"Red"}), own_session="mesh") is None
