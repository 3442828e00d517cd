"""Shapes, range-and-bearing lines and aircraft in TAKPacketV2 form: CoT to mesh packet to CoT, same geometry."""

from __future__ import annotations

import re

import pytest
from lxml import etree
from meshtastic.protobuf import atak_pb2, portnums_pb2

from rallypoint.connectors.meshtastic.budget import Lane
from rallypoint.connectors.meshtastic.dictionaries import AIRCRAFT, NON_AIRCRAFT, bundled
from rallypoint.connectors.meshtastic.mesh_cot import from_mesh
from rallypoint.connectors.meshtastic.outbound import outgoing
from rallypoint.connectors.meshtastic.packets import MAX_SEND_PAYLOAD, MeshInbound
from rallypoint.connectors.meshtastic.tak import TakCodec
from rallypoint.connectors.meshtastic.v2_shapes import MAX_VERTICES
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.routing.envelope import Envelope, Origin
from tests.support.meshtastic import packet

NOW = 1_700_000_000_000
T = "2023-11-14T22:13:20.000Z"
STALE = "2023-11-15T22:13:20.000Z"
SEND = frozenset({"pli", "chat", "emergency", "marker", "route", "shape", "rab", "aircraft"})
TAK = TakCodec(bundled())
_ids = iter(range(1, 1_000_000))


def event(kind: str, detail: str, *, lat: float = 33.1258, lon: float = -107.2638, how: str = "h-e",
          uid: str = "shape-1", hae: str = "9999999.0") -> CotEvent:
    return parse_event((
        f'<event version="2.0" uid="{uid}" type="{kind}" how="{how}" time="{T}" start="{T}" stale="{STALE}">'
        f'<point lat="{lat}" lon="{lon}" hae="{hae}" ce="9999999.0" le="9999999.0"/>'
        f"<detail>{detail}</detail></event>"
    ).encode(), Limits())


def through_mesh(ev: CotEvent, send: frozenset[str] = SEND) -> tuple[CotEvent, bytes, Lane]:
    """``ev`` as the gateway sends it, then as a gateway at the other end of the mesh reads it."""
    item = outgoing(Envelope(ev, Origin(session_id="tcp-1", node="n"), NOW), tak=TAK, send=send,
                    send_groups=frozenset(), own_session="mesh")
    assert item is not None and item.port == portnums_pb2.ATAK_PLUGIN_V2
    assert len(item.payload) <= MAX_SEND_PAYLOAD
    (back,) = MeshInbound(TAK).packet(packet(9, item.port, item.payload, next(_ids)), NOW).events
    assert from_mesh(back) and back.uid == ev.uid and back.type == ev.type
    return back, item.payload, item.lane


def detail(ev: CotEvent) -> etree._Element:
    return etree.fromstring(b"<detail>" + ev.detail.xml + b"</detail>")


def vertices(ev: CotEvent) -> list[tuple[float, float]]:
    return [tuple(map(float, str(link.get("point")).split(","))) for link in detail(ev).findall("link")]  # type: ignore[misc]


def test_polygon_keeps_its_vertices_to_the_format_precision_and_its_style() -> None:
    pts = [(33.12972, -107.25592), (33.12989, -107.25530), (33.12938, -107.25482), (33.12885, -107.25546),
           (33.12913, -107.25608)]
    links = "".join(f'<link point="{a},{b}"/>' for a, b in pts)
    ev = event("u-d-p", links + '<strokeColor value="-16711936"/><strokeWeight value="3.0"/>'
               '<fillColor value="1090486528"/><contact callsign="Polygon 1"/><labels_on value="true"/>'
               "<remarks>keep out</remarks>", lat=33.1294, lon=-107.2558)
    back, payload, lane = through_mesh(ev)
    assert payload[0] in (NON_AIRCRAFT, 0xFF) and lane is Lane.POSITION  # whichever is shorter
    got = vertices(back)
    assert len(got) == len(pts)
    for (a, b), (c, d) in zip(pts, got, strict=True):
        assert abs(a - c) <= 1e-7 and abs(b - d) <= 1e-7  # 1e-7 degree offsets from the packet's position
    d = detail(back)
    assert d.find("strokeColor").get("value") == "-16711936"  # type: ignore[union-attr]
    assert d.find("fillColor").get("value") == "1090486528"  # type: ignore[union-attr]
    assert d.find("strokeWeight").get("value") == "3.0"  # type: ignore[union-attr]
    assert d.find("labels_on").get("value") == "true"  # type: ignore[union-attr]
    assert back.detail.callsign == "Polygon 1" and d.findtext("remarks") == "keep out"
    assert abs(back.point.lat - 33.1294) < 1e-7


@pytest.mark.parametrize(("kind", "major", "minor", "angle"), [
    ("u-d-c-c", 226.98, 226.98, 360), ("u-d-c-e", 1200.5, 300.25, 45), ("u-r-b-c-c", 5000.0, 5000.0, 0),
])
def test_circles_and_ellipses_keep_radii_to_the_centimetre(kind: str, major: float, minor: float, angle: int) -> None:
    ev = event(kind, f'<shape><ellipse major="{major}" minor="{minor}" angle="{angle}"/></shape>'
               '<strokeColor value="-1"/><strokeWeight value="4.0"/><fillColor value="-1761607681"/>'
               '<contact callsign="Circle"/>')
    back, _, _ = through_mesh(ev)
    ellipse = detail(back).find("shape/ellipse")
    assert ellipse is not None
    assert abs(float(ellipse.get("major", "0")) - major) <= 0.01
    assert abs(float(ellipse.get("minor", "0")) - minor) <= 0.01
    assert int(ellipse.get("angle", "-1")) == angle
    assert (back.point.lat, back.point.lon) == (ev.point.lat, ev.point.lon)


def test_bullseye_keeps_distance_reference_and_flags() -> None:
    ev = event("u-r-b-bullseye", '<shape><ellipse major="500.0" minor="500.0" angle="360"/></shape>'
               '<bullseye distance="500.0" bearingRef="T" rangeRingVisible="true" hasRangeRings="true"'
               ' edgeToCenter="false" mils="true"/><strokeColor value="-65536"/>')
    back, _, _ = through_mesh(ev)
    bullseye = detail(back).find("bullseye")
    assert bullseye is not None and float(bullseye.get("distance", "0")) == 500.0
    assert (bullseye.get("bearingRef"), bullseye.get("mils"), bullseye.get("edgeToCenter")) == ("T", "true", "false")


def test_rectangle_and_freeform_lines() -> None:
    corners = [(33.12724, -107.25977), (33.12718, -107.25818), (33.12499, -107.25833), (33.12506, -107.25992)]
    rect = event("u-d-r", "".join(f'<link point="{a},{b}"/>' for a, b in corners), lat=33.12612, lon=-107.25905)
    back, _, _ = through_mesh(rect)
    assert [(round(a, 5), round(b, 5)) for a, b in vertices(back)] == corners
    line = event("u-d-f", '<link point="33.1,-107.2"/><link point="33.2,-107.3"/><strokeColor value="-256"/>')
    back, _, _ = through_mesh(line)
    assert vertices(back) == [(33.1, -107.2), (33.2, -107.3)]
    assert detail(back).find("fillColor") is None  # a line is stroke only


def test_a_long_telestration_is_thinned_to_fit_one_packet_and_marked_truncated() -> None:
    pts = [(33.12 + 0.0013 * i, -107.25 + 0.0017 * ((i * 7) % 11)) for i in range(60)]
    ev = event("u-d-f-m", "".join(f'<link point="{a:.6f},{b:.6f}"/>' for a, b in pts)
               + "<remarks>" + "long note " * 30 + "</remarks>")
    back, payload, _ = through_mesh(ev)
    got = vertices(back)
    assert 3 <= len(got) <= MAX_VERTICES and len(payload) <= MAX_SEND_PAYLOAD
    assert TAK.unpack_v2(payload).shape.truncated
    assert got[0] == pytest.approx(pts[0], abs=1e-7)  # thinned, not shifted: the first vertex stays
    assert all(any(p == pytest.approx(q, abs=1e-7) for q in pts) for p in got)


def test_range_and_bearing_keeps_anchor_range_and_bearing() -> None:
    ev = event("u-rb-a", '<link uid="anchor-1" relation="p-p" type="b-m-p-w" point="33.1270,-107.2570"/>'
               '<range value="1250.5"/><bearing value="135.25"/><strokeColor value="-65536"/>'
               '<strokeWeight value="2.5"/><contact callsign="RB Line 1"/>', lat=33.1264, lon=-107.2558)
    back, _, _ = through_mesh(ev)
    d = detail(back)
    assert float(d.find("range").get("value", "0")) == pytest.approx(1250.5, abs=0.01)  # type: ignore[union-attr]
    assert float(d.find("bearing").get("value", "0")) == pytest.approx(135.25, abs=0.01)  # type: ignore[union-attr]
    link = d.find("link")
    assert link is not None and link.get("uid") == "anchor-1"
    assert tuple(map(float, str(link.get("point")).split(","))) == pytest.approx((33.127, -107.257), abs=1e-7)
    assert d.find("strokeColor").get("value") == "-65536"  # type: ignore[union-attr]


def test_aircraft_use_the_aircraft_dictionary_and_wait_behind_positions() -> None:
    ev = event("a-n-A-C-F", '<contact callsign="TST100"/><track speed="223.58" course="76.16"/>'
               '<remarks>ICAO: A1B2C3 REG: N12345 Flight: TST100 Type: A321 Squawk: 3456 Category: A3</remarks>',
               how="m-g", uid="ICAO-A1B2C3", lat=33.132, lon=-107.248, hae="3048")
    back, payload, lane = through_mesh(ev)
    assert payload[0] in (AIRCRAFT, 0xFF) and lane is Lane.BULK
    packet_ = TAK.unpack_v2(payload)
    assert (packet_.aircraft.icao, packet_.aircraft.registration, packet_.aircraft.squawk) == ("A1B2C3", "N12345", 3456)
    d = detail(back)
    assert d.find("_aircot_").get("icao") == "A1B2C3"  # type: ignore[union-attr]
    assert "Squawk: 3456" in (d.findtext("remarks") or "") and back.detail.callsign == "TST100"
    assert back.detail.speed == pytest.approx(223.58, abs=0.01)
    assert back.detail.course == pytest.approx(76.16, abs=0.01)
    assert back.point.hae == 3048.0
    # Only when asked: a feed's sky would fill the channel.
    assert outgoing(Envelope(ev, Origin(session_id="tcp-1", node="n"), NOW), tak=TAK,
                    send=SEND - {"aircraft"}, send_groups=frozenset(), own_session="mesh") is None


def test_kinds_not_listed_stay_off_the_mesh() -> None:
    poly = event("u-d-p", '<link point="33.1,-107.2"/><link point="33.2,-107.3"/><link point="33.3,-107.2"/>')
    rab = event("u-rb-a", '<range value="10"/><bearing value="20"/>')
    for ev in (poly, rab):
        assert outgoing(Envelope(ev, Origin(session_id="tcp-1", node="n"), NOW), tak=TAK,
                        send=frozenset({"pli", "chat"}), send_groups=frozenset(), own_session="mesh") is None
    # Shapes without geometry are not sent at all.
    empty = event("u-d-c-c", '<contact callsign="no ellipse"/>')
    assert outgoing(Envelope(empty, Origin(session_id="tcp-1", node="n"), NOW), tak=TAK, send=SEND,
                    send_groups=frozenset(), own_session="mesh") is None


def test_hostile_geometry_from_the_mesh_is_refused_or_kept_on_the_globe() -> None:
    inbound = MeshInbound(TAK)
    far = atak_pb2.TAKPacketV2(uid="evil-1", cot_type_id=atak_pb2.CotType_u_d_p, latitude_i=890_000_000,
                               longitude_i=1_790_000_000)
    far.shape.kind = atak_pb2.DrawnShape.Kind_Polygon
    far.shape.vertex_lat_deltas.extend([2_000_000_000, -5])
    far.shape.vertex_lon_deltas.extend([2_000_000_000, 5])
    (ev,) = inbound.packet(packet(7, portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(far), 1), NOW).events
    for lat, lon in vertices(ev):
        assert -90 <= lat <= 90 and -180 <= lon <= 180
    off_globe = atak_pb2.TAKPacketV2(uid="evil-2", cot_type_id=atak_pb2.CotType_u_rb_a, latitude_i=1_000_000_000)
    off_globe.rab.range_cm = 5
    with pytest.raises(RemoteProtocolError) as err:
        inbound.packet(packet(7, portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(off_globe), 2), NOW)
    assert err.value.reason == "malformed"
    bad_uid = atak_pb2.TAKPacketV2(uid="", cot_type_id=atak_pb2.CotType_u_d_c_c)
    bad_uid.shape.kind = atak_pb2.DrawnShape.Kind_Circle
    with pytest.raises(RemoteProtocolError):
        inbound.packet(packet(7, portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(bad_uid), 3), NOW)
    # Strings that XML cannot carry never reach the picture as broken markup.
    control = atak_pb2.TAKPacketV2(uid="evil-3", callsign="a\x01b<&>", cot_type_id=atak_pb2.CotType_u_d_c_c,
                                   remarks="x\x02y")
    control.shape.kind = atak_pb2.DrawnShape.Kind_Circle
    try:
        (ev,) = inbound.packet(packet(7, portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(control), 4), NOW).events
    except RemoteProtocolError:
        return
    assert not re.search(rb"[\x00-\x08]", ev.raw or b"")


def test_nan_and_absurd_numbers_in_cot_do_not_reach_the_mesh_as_garbage() -> None:
    ev = event("u-d-c-c", '<shape><ellipse major="NaN" minor="1e300" angle="abc"/></shape>'
               '<strokeColor value="red"/><strokeWeight value="inf"/>')
    _, payload, _ = through_mesh(ev)
    shape = TAK.unpack_v2(payload).shape
    assert (shape.major_cm, shape.minor_cm, shape.angle_deg, shape.stroke_argb, shape.stroke_weight_x10) == (
        0, 0, 360, 0, 0)


def test_enum_values_of_a_newer_schema_are_refused_or_said_as_unspecified() -> None:
    inbound = MeshInbound(TAK)
    newer = atak_pb2.TAKPacketV2(uid="newer-1", cot_type_id=9999)  # no type string to fall back on
    newer.shape.kind = atak_pb2.DrawnShape.Kind_Circle
    with pytest.raises(RemoteProtocolError) as err:
        inbound.packet(packet(7, portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(newer, dict_id=NON_AIRCRAFT), 1), NOW)
    assert err.value.reason == "tak_unsupported"
    named = atak_pb2.TAKPacketV2(uid="newer-2", cot_type_id=9999, cot_type_str="u-d-c-c")
    named.shape.kind = atak_pb2.DrawnShape.Kind_Circle
    (ev,) = inbound.packet(packet(7, portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(named, dict_id=NON_AIRCRAFT), 2),
                           NOW).events
    assert ev.type == "u-d-c-c"
    route = atak_pb2.TAKPacketV2(uid="newer-3", cot_type_id=atak_pb2.CotType_b_m_r)
    route.route.method = 77
    route.route.links.add(uid="wp")
    (ev,) = inbound.packet(packet(7, portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(route), 3), NOW).events
    assert b'method="Unspecified"' in (ev.raw or b"")


def test_a_polygon_from_a_sender_on_the_earlier_schema_draft_keeps_its_vertices() -> None:
    """The TAKPacket-SDK's draft wrote vertices as repeated CotGeoPoint in DrawnShape field 12."""
    shape = atak_pb2.DrawnShape(kind=atak_pb2.DrawnShape.Kind_Polygon).SerializeToString()
    for dlat, dlon in ((1000, -2000), (-3000, 4000), (5000, 6000)):
        point = atak_pb2.CotGeoPoint(lat_delta_i=dlat, lon_delta_i=dlon).SerializeToString()
        shape += bytes([12 << 3 | 2, len(point)]) + point
    shape += bytes([12 << 3 | 2, 3]) + b"\xff\xff\xff"  # a broken vertex: left out
    head = atak_pb2.TAKPacketV2(uid="draft-1", cot_type_id=atak_pb2.CotType_u_d_p, latitude_i=331_000_000,
                                longitude_i=-1_072_000_000).SerializeToString()
    wire = head + bytes([0x92, 0x02, len(shape)]) + shape  # TAKPacketV2.shape: field 34, as a varint tag
    (ev,) = MeshInbound(TAK).packet(packet(7, portnums_pb2.ATAK_PLUGIN_V2, b"\xff" + wire, 1), NOW).events
    assert vertices(ev) == [(33.1001, -107.2002), (33.0997, -107.1996), (33.1005, -107.1994)]
