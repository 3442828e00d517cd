"""Generic CoT in the plugin's packets (TAKPacket ``detail``, TAKPacketV2 ``raw_detail``), mesh to picture."""

from __future__ import annotations

import pytest
import unishox2
from lxml import etree
from meshtastic.protobuf import atak_pb2, portnums_pb2

from rallypoint.connectors.meshtastic.dictionaries import bundled
from rallypoint.connectors.meshtastic.mesh_cot import from_mesh
from rallypoint.connectors.meshtastic.outbound import outgoing
from rallypoint.connectors.meshtastic.packets import MAX_PAYLOAD, MeshInbound
from rallypoint.connectors.meshtastic.tak import Kind, TakCodec, TakMessage
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.routing.envelope import Envelope, Origin
from tests.support.meshtastic import packet

NOW = 1_700_000_000_000
TAK = TakCodec(bundled())
SEND = frozenset({"pli", "chat", "emergency", "marker", "route", "shape", "rab", "aircraft"})
# A hand-placed sensor as a plugin would forward it whole (fits one LoRa packet).
SENSOR = (b'<event uid="trip-7" type="a-u-G" time="2023-11-14T22:13:20Z" start="2023-11-14T22:13:20Z"'
          b' stale="2023-11-14T23:13:20Z"><point lat="48.1" lon="11.5" hae="52"/>'
          b'<detail><contact callsign="Trip 7"/></detail></event>')
_ids = iter(range(1, 1_000_000))


def through(port: int, payload: bytes) -> CotEvent:
    assert len(payload) <= MAX_PAYLOAD
    (event,) = MeshInbound(TAK).packet(packet(0x11, port, payload, next(_ids)), NOW).events
    return event


def children(event: CotEvent) -> list[etree._Element]:
    return list(etree.fromstring(b"<detail>" + event.detail.xml + b"</detail>"))


def refused(port: int, payload: bytes) -> str:
    with pytest.raises(RemoteProtocolError) as info:
        MeshInbound(TAK).packet(packet(0x11, port, payload, next(_ids)), NOW)
    return info.value.reason


@pytest.mark.parametrize("compressed", [False, True])
def test_a_v1_detail_holding_an_event_enters_as_that_event(compressed: bool) -> None:
    detail = bytes(unishox2.compress(SENSOR.decode())[0]) if compressed else SENSOR
    payload = TAK.encode_v1(TakMessage(kind=Kind.DETAIL, uid="ANDROID-1", callsign="VIPER", detail=detail),
                            compress=compressed)
    event = through(portnums_pb2.ATAK_PLUGIN, payload)
    assert (event.uid, event.type, event.how) == ("trip-7", "a-u-G", "h-g-i-g-o")  # CoT's default how
    assert (event.point.lat, event.point.lon, event.point.hae) == (48.1, 11.5, 52.0)
    assert event.stale - event.time == 3_600_000  # the event's own times
    assert event.detail.callsign == "Trip 7" and from_mesh(event)
    # Made on the mesh: never sent back into it.
    assert outgoing(Envelope(event, Origin(session_id="tcp-1", node="n"), NOW), tak=TAK, send=SEND,
                    send_groups=frozenset(), own_session="mesh") is None


def test_a_v1_detail_without_an_event_or_with_bad_xml_is_refused() -> None:
    def v1(detail: bytes) -> bytes:
        return TAK.encode_v1(TakMessage(kind=Kind.DETAIL, uid="ANDROID-1", callsign="VIPER", detail=detail))

    assert refused(portnums_pb2.ATAK_PLUGIN, v1(b'<contact callsign="no position"/>')) == "tak_unsupported"
    assert refused(portnums_pb2.ATAK_PLUGIN, v1(SENSOR[:150])) == "tak_malformed"  # truncated by the sender
    doctype = b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x "y">]><event uid="&x;"/>'
    assert refused(portnums_pb2.ATAK_PLUGIN, v1(doctype)) == "tak_malformed"
    assert refused(portnums_pb2.ATAK_PLUGIN, v1(b"\xff\xfe not xml")) == "tak_malformed"
    # Compressed, but not unishox2.
    compressed = TAK.encode_v1(TakMessage(kind=Kind.DETAIL, uid="A", callsign="B", detail=b"\xff" * 40), compress=True)
    assert refused(portnums_pb2.ATAK_PLUGIN, compressed) == "tak_malformed"


def v2(raw: bytes, **fields: object) -> atak_pb2.TAKPacketV2:
    p = atak_pb2.TAKPacketV2(uid="sensor-9", callsign="Gate sensor", cot_type_str="a-u-G-E-S",
                             latitude_i=481_000_000, longitude_i=115_000_000, altitude=520, team=10, role=1,
                             battery=64, stale_seconds=120, how=atak_pb2.CotHow_h_e, remarks="seen at dusk",
                             **fields)  # type: ignore[arg-type]
    p.raw_detail = raw
    return p


def test_a_v2_raw_detail_keeps_its_xml_inside_the_packets_envelope() -> None:
    raw = b'<sensor fov="45" range="150" azimuth="270"/><__video url="rtsp://10.0.0.9:554/gate"/>'
    event = through(portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(v2(raw)))
    assert (event.uid, event.type, event.how) == ("sensor-9", "a-u-G-E-S", "h-e")
    assert (event.point.lat, event.point.lon, event.point.hae) == (48.1, 11.5, 520.0)
    assert event.stale == NOW + 120_000 and from_mesh(event)
    tags = [str(c.tag) for c in children(event)]
    assert tags == ["contact", "__group", "status", "remarks", "sensor", "__video", "__meshtastic"]
    assert event.detail.callsign == "Gate sensor" and event.detail.battery == 64
    assert (event.detail.group_name, event.detail.group_role) == ("Cyan", "Team Member")
    assert children(event)[4].get("azimuth") == "270"


def test_a_v2_raw_detail_says_its_own_contact_and_remarks_once() -> None:
    raw = b'<contact callsign="Own name"/><remarks>its own</remarks>'
    event = through(portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(v2(raw), dict_id=0xFF))
    tags = [str(c.tag) for c in children(event)]
    assert tags.count("contact") == 1 and tags.count("remarks") == 1
    assert event.detail.callsign == "Own name" and b"its own" in event.detail.xml


def test_a_v2_raw_detail_that_does_not_parse_or_names_no_uid_is_refused() -> None:
    assert refused(portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(v2(b"<sensor fov="))) == "tak_malformed"
    assert refused(portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(v2(b'<a><!ENTITY x "y"></a>'))) == "tak_malformed"
    nameless = v2(b"<sensor/>")
    nameless.uid = ""
    assert refused(portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(nameless)) == "tak_malformed"
    far = v2(b"<sensor/>")
    far.latitude_i = 950_000_000
    assert refused(portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(far)) == "malformed"
