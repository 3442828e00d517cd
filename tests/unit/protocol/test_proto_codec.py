"""Protobuf codec: xmlDetail rules, validation, mesh datagrams, and a cross-check against takproto."""

from __future__ import annotations

import pytest
import takproto
from takproto.constants import TAKProtoVer

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent, Dest, Point
from rallypoint.protocol import (
    Limits,
    ProtoStreamFramer,
    WireFormat,
    decode_datagram,
    decode_payload,
    encode_for_wire,
    encode_mesh,
    encode_payload,
    make_event,
    parse_event,
)
from rallypoint.protocol.pb import takmessage_pb2
from tests.unit.protocol.conftest import PLI, sample
from tests.unit.protocol.test_xml_codec import ALL_SAMPLES, TEMPLATES

T0 = 1_714_557_600_000


def event_with(detail_xml: bytes) -> CotEvent:
    return make_event(
        uid="u-1",
        type="a-f-G-U-C",
        how="m-g",
        time=T0,
        start=T0,
        stale=T0 + 60_000,
        point=Point(10.0, 20.0, 1.5, 2.0, 3.0),
        detail_xml=detail_xml,
    )


def message_for(detail_xml: bytes) -> takmessage_pb2.TakMessage:
    event = event_with(detail_xml)
    return takmessage_pb2.TakMessage.FromString(encode_payload(event))


def test_typed_fields_used_when_exactly_convertible() -> None:
    msg = message_for(
        b'<contact callsign="JENNY" endpoint="*:-1:stcp"/><__group name="Cyan" role="Team Member"/>'
        b'<precisionlocation geopointsrc="GPS" altsrc="DTED0"/><status battery="78"/>'
        b'<takv device="Pixel" platform="ATAK-CIV" os="34" version="5.1"/><track speed="1.5" course="270.0"/>'
        b'<uid Droid="JENNY"/>'
    )
    d = msg.cotEvent.detail
    assert (d.contact.callsign, d.contact.endpoint) == ("JENNY", "*:-1:stcp")
    assert (d.group.name, d.group.role) == ("Cyan", "Team Member")
    assert (d.precisionLocation.geopointsrc, d.precisionLocation.altsrc) == ("GPS", "DTED0")
    assert d.status.battery == 78
    assert (d.takv.device, d.takv.platform, d.takv.os, d.takv.version) == ("Pixel", "ATAK-CIV", "34", "5.1")
    assert (d.track.speed, d.track.course) == (1.5, 270.0)
    assert d.xmlDetail == '<uid Droid="JENNY"/>'


def test_all_typed_means_no_xml_detail() -> None:
    msg = message_for(b'<contact callsign="A"/><status battery="0"/>')
    d = msg.cotEvent.detail
    assert d.xmlDetail == "" and d.HasField("contact") and d.HasField("status") and d.status.battery == 0


@pytest.mark.parametrize(
    "element",
    [
        b'<contact callsign="A" phone="123"/>',  # attribute the message cannot carry
        b'<contact endpoint="x:1:tcp"/>',  # required callsign missing
        b'<contact callsign=""/>',  # empty value would not come back
        b'<contact callsign="A"><extra/></contact>',  # child element
        b'<__group name="Cyan"/>',  # role missing
        b'<precisionlocation altsrc="???"/>',  # geopointsrc missing
        b'<status readiness="true"/>',
        b'<status battery="78" readiness="true"/>',
        b'<status battery="-1"/>',
        b'<status battery="078"/>',
        b'<status battery="99999999999"/>',
        b'<takv platform="ATAK-CIV"/>',  # version missing
        b'<track speed="nan" course="1"/>',
        b'<track speed="1"/>',
        b'<track speed="1" course="2" slope="3"/>',
    ],
)
def test_elements_that_cannot_convert_whole_stay_in_xml(element: bytes) -> None:
    msg = message_for(element)
    d = msg.cotEvent.detail
    tag = element[1:].split(b" ")[0].split(b">")[0].split(b"/")[0].decode()
    field = {
        "contact": "contact",
        "__group": "group",
        "precisionlocation": "precisionLocation",
        "status": "status",
        "takv": "takv",
        "track": "track",
    }[tag]
    assert not d.HasField(field)
    assert d.xmlDetail.encode() == element


def test_duplicates_stay_in_xml() -> None:
    msg = message_for(b'<contact callsign="A"/><contact callsign="B"/><__group name="Cyan" role="HQ"/>')
    d = msg.cotEvent.detail
    assert not d.HasField("contact") and d.HasField("group")
    assert d.xmlDetail == '<contact callsign="A"/><contact callsign="B"/>'


def test_decode_merges_typed_fields_and_xml_detail_wins() -> None:
    msg = takmessage_pb2.TakMessage()
    ce = msg.cotEvent
    ce.uid, ce.type, ce.how = "u", "a-f-G", "m-g"
    ce.sendTime = ce.startTime = T0
    ce.staleTime = T0 + 1000
    ce.lat, ce.lon = 1.0, 2.0
    ce.detail.xmlDetail = '<contact callsign="FROM-XML"/><marti><dest uid="X"/></marti><remarks>r</remarks>'
    ce.detail.contact.callsign = "FROM-TYPED"
    ce.detail.group.name, ce.detail.group.role = "Red", "HQ"
    ce.detail.track.speed, ce.detail.track.course = 2.5, 90.0
    event = decode_payload(msg.SerializeToString(), Limits()).event
    assert event is not None and event.raw is None
    assert event.detail.callsign == "FROM-XML"
    assert b"FROM-TYPED" not in event.detail.xml
    assert (event.detail.group_name, event.detail.group_role) == ("Red", "HQ")
    assert (event.detail.speed, event.detail.course) == (2.5, 90.0)
    assert event.detail.has_marti and event.detail.dests == (Dest(uid="X"),)
    assert b"marti" not in event.detail.xml
    assert (
        b'<__group name="Red" role="HQ"/>' in event.detail.xml and b"<remarks>r</remarks>" in event.detail.xml
    )


def test_missing_how_and_empty_optionals() -> None:
    msg = takmessage_pb2.TakMessage()
    ce = msg.cotEvent
    ce.uid, ce.type = "u", "a-f-G"
    event = decode_payload(msg.SerializeToString(), Limits()).event
    assert event is not None
    assert event.how == "h-g-i-g-o" and event.access is None and event.detail.xml == b""


@pytest.mark.parametrize("name", sorted(set(ALL_SAMPLES) - TEMPLATES))
def test_every_sample_round_trips_through_protobuf(name: str, limits: Limits) -> None:
    event = parse_event(sample(name), limits)
    back = decode_payload(encode_payload(event), limits).event
    assert back is not None
    for field in ("uid", "type", "how", "time", "start", "stale", "point", "access", "qos", "opex"):
        assert getattr(back, field) == getattr(event, field), field
    d, b = event.detail, back.detail
    assert (b.callsign, b.endpoint, b.group_name, b.group_role, b.chat, b.link_uid, b.emergency) == (
        d.callsign,
        d.endpoint,
        d.group_name,
        d.group_role,
        d.chat,
        d.link_uid,
        d.emergency,
    )
    assert (b.battery, b.speed, b.course, b.platform) == (d.battery, d.speed, d.course, d.platform)
    assert not b.has_marti


def test_control_only_message() -> None:
    msg = takmessage_pb2.TakMessage()
    msg.takControl.minProtoVersion = 0
    msg.takControl.maxProtoVersion = 1
    msg.takControl.contactUid = "ANDROID-1"
    payload = decode_payload(msg.SerializeToString(), Limits())
    assert payload.event is None and payload.control is not None
    assert (payload.control.min_version, payload.control.max_version, payload.control.contact_uid) == (
        1,
        1,
        "ANDROID-1",
    )


def test_mesh_datagram_round_trip(pli_bytes: bytes, limits: Limits) -> None:
    event = parse_event(pli_bytes, limits)
    datagram = encode_mesh(event)
    assert datagram[:3] == b"\xbf\x01\xbf"
    back = decode_datagram(datagram, limits)
    assert back.uid == event.uid and back.detail.callsign == "JENNY"
    assert decode_datagram(b"<?xml version='1.0'?>\n" + pli_bytes, limits).raw == pli_bytes
    with pytest.raises(RemoteProtocolError) as info:
        decode_datagram(b"\xbf\x02\xbf" + datagram[3:], limits)
    assert info.value.reason == "bad_header"
    with pytest.raises(RemoteProtocolError) as info:
        decode_datagram(b"\xbf\x01\xbf", limits)
    assert info.value.reason == "no_event"


# --- cross-checks against takproto, an independent implementation --------------------------------


@pytest.mark.parametrize(
    "name", [PLI, "01b_sa_pli_minimal_taky_fixture.xml", "11_emergency_911_alert_takserver_test.xml"]
)
def test_takproto_stream_output_decodes_with_our_framer(name: str, limits: Limits) -> None:
    xml = sample(name).strip()
    stream = bytes(takproto.xml2proto(xml, TAKProtoVer.STREAM))
    framer = ProtoStreamFramer(limits)
    framer.feed(stream)
    frame = framer.next_frame()
    assert frame is not None and framer.next_frame() is None
    ours = parse_event(xml, limits)
    theirs = decode_payload(frame, limits).event
    assert theirs is not None
    for field in ("uid", "type", "how", "time", "start", "stale", "point"):
        assert getattr(theirs, field) == getattr(ours, field), field
    assert theirs.detail.callsign == ours.detail.callsign
    assert theirs.detail.battery == ours.detail.battery
    assert theirs.detail.platform == ours.detail.platform
    assert theirs.detail.link_uid == ours.detail.link_uid


def test_takproto_mesh_output_decodes_as_datagram(pli_bytes: bytes, limits: Limits) -> None:
    mesh = bytes(takproto.xml2proto(pli_bytes, TAKProtoVer.MESH))
    event = decode_datagram(mesh, limits)
    assert (event.uid, event.detail.group_name, event.detail.speed) == ("ANDROID-deadbeef", "Cyan", 0.0)


@pytest.mark.parametrize("wire", ["stream", "mesh"])
def test_our_protobuf_parses_with_takproto(wire: str, limits: Limits) -> None:
    event = parse_event(sample(PLI), limits)
    data = encode_for_wire(event, WireFormat.PROTOBUF) if wire == "stream" else encode_mesh(event)
    msg = takproto.parse_proto(bytearray(data))
    ce = msg.cotEvent
    assert (ce.uid, ce.type, ce.how) == (event.uid, event.type, event.how)
    assert (ce.sendTime, ce.startTime, ce.staleTime) == (event.time, event.start, event.stale)
    assert (ce.lat, ce.lon, ce.hae, ce.ce, ce.le) == (
        event.point.lat,
        event.point.lon,
        event.point.hae,
        event.point.ce,
        event.point.le,
    )
    d = ce.detail
    assert (d.group.name, d.group.role) == ("Cyan", "Team Member")
    assert d.status.battery == 78 and d.takv.platform == "ATAK-CIV" and d.track.course == event.detail.course
    # ATAK's contact carries xmppUsername, which Contact cannot: the whole element stays in XML.
    assert not d.HasField("contact")
    assert '<contact xmppUsername="xmpp@host.com" endpoint="*:-1:stcp" callsign="JENNY"/>' in d.xmlDetail
    assert '<uid Droid="JENNY"/>' in d.xmlDetail
