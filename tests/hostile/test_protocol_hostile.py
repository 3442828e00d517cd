"""Hostile input to the protocol layer: each attack gets a clear reason and the stream survives."""

from __future__ import annotations

import pytest

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import Point
from rallypoint.protocol import (
    NEED_DATA,
    ConnectionClosed,
    ConnectionEvent,
    CotConnection,
    EventReceived,
    EventRejected,
    Limits,
    UpgradeRequested,
    WireFormat,
    XmlDecoder,
    decode_datagram,
    decode_payload,
    encode_for_wire,
    make_event,
    parse_event,
)
from rallypoint.protocol.pb import takmessage_pb2
from rallypoint.protocol.wire import encode_varint

NOW = 1_714_557_600_000
GOOD = make_event(
    uid="good-1",
    type="a-f-G-U-C",
    how="m-g",
    time=NOW,
    start=NOW,
    stale=NOW + 60_000,
    point=Point(45.0, 7.0),
    detail_xml=b'<contact callsign="GOOD"/>',
)
assert GOOD.raw is not None
GOOD_XML: bytes = GOOD.raw


def head(lat: str = "1.0", lon: str = "2.0", time: str = "2024-05-01T10:00:00Z") -> str:
    return (
        f'<event version="2.0" uid="h" type="a-f-G" how="m-g" time="{time}" start="2024-05-01T10:00:00Z" '
        f'stale="2024-05-01T10:01:00Z"><point lat="{lat}" lon="{lon}" hae="0" ce="1" le="1"/>'
    )


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]>"
    + head()
    + "<detail><remarks>&lol9;</remarks></detail></event>"
).encode()
XXE = (
    '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + head()
    + "<detail><remarks>&xxe;</remarks></detail></event>"
).encode()
XXE_NO_DOCTYPE_PREFIX = (head() + "<detail><remarks>&xxe;</remarks></detail></event>").encode()
PARAMETER_ENTITY = (head() + '<!ENTITY % p SYSTEM "http://example.invalid/x"><detail/></event>').encode()
DOCTYPE_LOWER = b"<!doctype event>" + head().encode() + b"<detail/></event>"
PI_INSIDE = (head() + "<?xml-stylesheet href='x'?><detail/></event>").encode()
DEEP = (head() + "<detail>" + "<a>" * 100_000 + "</a>" * 100_000 + "</detail></event>").encode()
MODERATELY_DEEP = (head() + "<detail>" + "<a>" * 40 + "</a>" * 40 + "</detail></event>").encode()

XML_ATTACKS = [
    (BILLION_LAUGHS, {"doctype"}),
    (XXE, {"doctype"}),
    (XXE_NO_DOCTYPE_PREFIX, {"entity"}),
    (PARAMETER_ENTITY, {"entity"}),
    (DOCTYPE_LOWER, {"doctype", "not_event"}),
    (PI_INSIDE, {"processing_instruction"}),
    (DEEP, {"too_deep", "event_too_large"}),
    (MODERATELY_DEEP, {"too_deep"}),
    ((head(lat="NaN") + "<detail/></event>").encode(), {"not_finite"}),
    ((head(lon="inf") + "<detail/></event>").encode(), {"not_finite"}),
    ((head(lat="1e999") + "<detail/></event>").encode(), {"not_finite"}),
    ((head(lat="91") + "<detail/></event>").encode(), {"bad_point"}),
    ((head(time="99999-01-01T00:00:00Z") + "<detail/></event>").encode(), {"bad_time"}),
    ((head(time="2024-13-45T99:99:99Z") + "<detail/></event>").encode(), {"bad_time"}),
    ((head(time="\u0000garbage") + "<detail/></event>").encode(), {"xml_malformed"}),
    (head().encode() + b"<detail><remarks>\xff\xfe\xc3</remarks></detail></event>", {"bad_encoding"}),
    (b"<event " + b"x" * 300_000 + b"/>", {"event_too_large"}),
]


@pytest.mark.parametrize(("data", "reasons"), XML_ATTACKS)
def test_xml_attack_is_rejected_with_a_clear_reason(data: bytes, reasons: set[str]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(data, Limits())
    assert info.value.reason in reasons
    assert b"root:" not in str(info.value).encode()


@pytest.mark.parametrize(("data", "reasons"), XML_ATTACKS)
def test_xml_attack_on_a_stream_then_the_next_good_event_arrives(data: bytes, reasons: set[str]) -> None:
    conn = CotConnection(Limits())
    conn.receive_data(data)
    conn.receive_data(GOOD_XML)
    got = drain(conn)
    rejected = [e.reason for e in got if isinstance(e, EventRejected)]
    received = [e.event for e in got if isinstance(e, EventReceived)]
    assert received[-1].uid == "good-1" and received[-1].detail.callsign == "GOOD"
    # A DOCTYPE in front of an event is junk between events: reported as garbage, never interpreted.
    if data.lstrip().upper().startswith(b"<!DOCTYPE") or data.lstrip().startswith(b"<?xml"):
        assert "garbage" in rejected
    rejected = [r for r in rejected if r != "garbage"]
    if data is DOCTYPE_LOWER:
        # On a stream a DOCTYPE before <event> is garbage between events: skipped, never interpreted.
        assert rejected == [] and [e.uid for e in received] == ["h", "good-1"]
    else:
        # A DOCTYPE in front is skipped as garbage, so the entity reference inside is what gets caught.
        assert len(rejected) == 1 and rejected[0] in reasons | {"entity"}
        assert len(received) == 1


def drain(conn: CotConnection) -> list[ConnectionEvent]:
    got: list[ConnectionEvent] = []
    while (ev := conn.next_event()) is not NEED_DATA:
        got.append(ev)
    return got


def test_depth_is_capped_even_when_the_size_limit_allows_the_document() -> None:
    roomy = Limits(max_event_bytes=2 * len(DEEP))
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(DEEP, roomy)
    assert info.value.reason == "too_deep"
    just_over = (head() + "<detail>" + "<a>" * 31 + "</a>" * 31 + "</detail></event>").encode()
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(just_over, Limits())
    assert info.value.reason == "too_deep"
    at_limit = (head() + "<detail>" + "<a>" * 30 + "</a>" * 30 + "</detail></event>").encode()
    assert parse_event(at_limit, Limits()).uid == "h"


def test_xxe_never_reads_the_file() -> None:
    for data in (XXE, XXE.replace(b"<!DOCTYPE", b"<!DocType")):
        try:
            event = parse_event(data, Limits())
        except RemoteProtocolError:
            continue
        pytest.fail(f"accepted: {event}")
    # Even a datagram path never expands it.
    with pytest.raises(RemoteProtocolError):
        decode_datagram(XXE, Limits())


def test_one_decoder_rejects_every_attack_like_a_fresh_parser_and_keeps_working() -> None:
    decoder = XmlDecoder(Limits())
    good = parse_event(GOOD_XML, Limits())
    for _ in range(2):
        for data, reasons in XML_ATTACKS:
            with pytest.raises(RemoteProtocolError) as info:
                decoder.decode(data)
            assert info.value.reason in reasons
            assert decoder.decode(GOOD_XML) == good
    roomy = XmlDecoder(Limits(max_event_bytes=2 * len(DEEP)))
    with pytest.raises(RemoteProtocolError) as info:
        roomy.decode(DEEP)
    assert info.value.reason == "too_deep"


@pytest.mark.parametrize(
    "detail",
    [
        '<!-- <detail><contact callsign="FAKE"/></detail> --><detail><contact callsign="REAL"/></detail>',
        '<detail><remarks><![CDATA[</detail><marti><dest uid="v"/></marti>]]></remarks></detail>',
        '<detail><contact callsign="REAL"/><!-- <marti><dest uid="v"/></marti> --></detail>',
        '<detail><contact callsign="REAL"/><marti><dest uid="v"/></marti></detail>',
        '<detail><a><detail><marti/></detail></a><contact callsign="REAL"/></detail>',
    ],
)
def test_detail_xml_never_carries_comments_cdata_markup_or_marti(detail: str) -> None:
    data = (head() + detail + "</event>").encode()
    for event in (parse_event(data, Limits()), XmlDecoder(Limits()).decode(data)):
        assert b"<!" not in event.detail.xml and b"FAKE" not in event.detail.xml
        assert b"<marti>" not in event.detail.xml
        assert event.detail.callsign in {"REAL", None}


# --- protobuf ------------------------------------------------------------------------------------


def good_payload() -> bytes:
    return encode_for_wire(GOOD, WireFormat.PROTOBUF)


def upgraded() -> CotConnection:
    conn = CotConnection(Limits())
    conn.receive_data(
        make_event(
            uid="srv",
            type="t-x-takp-q",
            how="m-g",
            time=NOW,
            start=NOW,
            stale=NOW + 1,
            point=Point(0.0, 0.0),
            detail_xml=b'<TakControl><TakRequest version="1"/></TakControl>',
        ).raw
        or b""
    )
    assert conn.next_event() == UpgradeRequested(1)
    conn.respond_upgrade(True, NOW)
    return conn


def with_unknown_fields() -> bytes:
    msg = takmessage_pb2.TakMessage.FromString(good_payload()[2:])
    return msg.SerializeToString() + b"\xf8\x07\x01" + b"\x82\x08\x03abc"  # fields 127 (varint), 128 (bytes)


def event_payload(**fields: object) -> bytes:
    msg = takmessage_pb2.TakMessage()
    ce = msg.cotEvent
    ce.uid, ce.type, ce.how = "p", "a-f-G", "m-g"
    ce.sendTime = ce.startTime = NOW
    ce.staleTime = NOW + 1000
    for name, value in fields.items():
        setattr(ce, name, value)
    return msg.SerializeToString()


PROTO_ATTACKS = [
    (event_payload(lat=float("nan")), {"not_finite"}),
    (event_payload(lon=float("inf")), {"not_finite"}),
    (event_payload(lat=91.0), {"bad_point"}),
    (event_payload(uid=""), {"missing_uid"}),
    (event_payload(uid="x" * 1000), {"uid_too_long"}),
    (event_payload(uid="bad\x01uid"), {"bad_chars"}),
    (event_payload(type="not a type"), {"bad_type"}),
    (event_payload(type="a-f;\x01"), {"bad_chars"}),
    (event_payload(staleTime=2**63), {"bad_time"}),
    (b"\x12\x09\x0a\x03a-f", {"proto_malformed"}),  # truncated nested message
    (b"\x12\xff\xff\xff\xff\x0f", {"proto_malformed"}),  # nested length beyond the payload
    (b"\x0a\x02\xc3\x28", {"proto_malformed"}),  # invalid UTF-8 in a string field
]


@pytest.mark.parametrize(("payload", "reasons"), PROTO_ATTACKS)
def test_bad_protobuf_is_rejected_and_the_next_frame_decodes(payload: bytes, reasons: set[str]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_payload(payload, Limits())
    assert info.value.reason in reasons
    conn = upgraded()
    conn.receive_data(b"\xbf" + encode_varint(len(payload)) + payload + good_payload())
    got = drain(conn)
    assert len(got) == 2
    assert isinstance(got[0], EventRejected) and got[0].reason in reasons
    assert isinstance(got[1], EventReceived) and got[1].event.uid == "good-1"


def test_unknown_protobuf_fields_are_accepted_and_dropped() -> None:
    payload = decode_payload(with_unknown_fields(), Limits())
    event = payload.event
    assert event is not None and event.uid == "good-1" and event.detail.callsign == "GOOD"
    # Reported so the server can count them (newer clients add fields; the event is still good).
    assert payload.unknown_fields is True
    assert decode_payload(good_payload()[2:], Limits()).unknown_fields is False


def test_unknown_protobuf_fields_deep_inside_are_reported() -> None:
    msg = takmessage_pb2.TakMessage.FromString(good_payload()[2:])
    msg.cotEvent.detail.contact.MergeFromString(b"\xf8\x07\x01")  # field 127 inside <contact>
    payload = decode_payload(msg.SerializeToString(), Limits())
    assert payload.unknown_fields is True
    assert payload.event is not None and payload.event.detail.callsign == "GOOD"


def test_unknown_protobuf_fields_on_a_stream_are_flagged_not_rejected() -> None:
    conn = upgraded()
    plain = good_payload()
    unknown = with_unknown_fields()
    conn.receive_data(b"\xbf" + encode_varint(len(unknown)) + unknown + plain)
    got = drain(conn)
    assert [type(ev) for ev in got] == [EventReceived, EventReceived]
    assert isinstance(got[0], EventReceived) and got[0].unknown_fields is True
    assert isinstance(got[1], EventReceived) and got[1].unknown_fields is False


def test_bad_xml_detail_inside_protobuf_is_rejected() -> None:
    msg = takmessage_pb2.TakMessage.FromString(event_payload())
    msg.cotEvent.detail.xmlDetail = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>'
    with pytest.raises(RemoteProtocolError) as info:
        decode_payload(msg.SerializeToString(), Limits())
    assert info.value.reason == "doctype"
    msg.cotEvent.detail.xmlDetail = "<a>" * 50 + "</a>" * 50
    with pytest.raises(RemoteProtocolError) as info:
        decode_payload(msg.SerializeToString(), Limits())
    assert info.value.reason == "too_deep"
    msg.cotEvent.detail.xmlDetail = "<a></b>"
    with pytest.raises(RemoteProtocolError) as info:
        decode_payload(msg.SerializeToString(), Limits())
    assert info.value.reason == "xml_malformed"


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"\xbf" + b"\x80" * 10 + b"\x01", "bad_varint"),
        (b"\xbf\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "event_too_large"),  # huge length prefix
        (b"\xbf\x80\x80\x80\x01" + b"\x00" * 10, "event_too_large"),  # 2 MiB declared, skipped by length
    ],
)
def test_bad_stream_headers_then_recovery(stream: bytes, reason: str) -> None:
    conn = upgraded()
    conn.receive_data(stream)
    first = conn.next_event()
    assert isinstance(first, EventRejected) and first.reason == reason
    # The 2 MiB frame is skipped by its length; feed that much filler, then a good frame.
    if stream.startswith(b"\xbf\x80\x80\x80\x01"):
        for _ in range(32):
            conn.receive_data(b"\x00" * 65536)
            # The 10 filler bytes sent with the header overrun the skipped frame: junk, reported once.
            assert all(isinstance(e, EventRejected) and e.reason == "garbage" for e in drain(conn))
    conn.receive_data(good_payload())
    got = drain(conn)
    assert isinstance(got[-1], EventReceived) and got[-1].event.uid == "good-1"


def test_truncated_frame_at_eof_closes_cleanly() -> None:
    conn = upgraded()
    conn.receive_data(good_payload()[:-5])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_non_utf8_and_binary_garbage_in_xml_mode() -> None:
    conn = CotConnection(Limits())
    conn.receive_data(bytes(range(256)) * 4 + b"\xbf\x01\xbf" + GOOD_XML)
    got = drain(conn)
    assert [type(e) for e in got] == [EventRejected, EventReceived]
    assert isinstance(got[0], EventRejected) and got[0].reason == "garbage"


def test_a_stream_of_nothing_but_garbage_is_ended() -> None:
    limits = Limits(max_event_bytes=4096)
    conn = CotConnection(limits)
    with pytest.raises(RemoteProtocolError) as info:
        for _ in range(10):
            conn.receive_data(b"<" * 1000)
            drain(conn)
    assert info.value.reason == "garbage_flood" and info.value.fatal


def test_garbage_between_valid_events_is_tolerated_without_limit() -> None:
    limits = Limits(max_event_bytes=4096)
    conn = CotConnection(limits)
    for _ in range(20):
        conn.receive_data(b"#" * 3000 + GOOD.raw)
        got = drain(conn)
        assert [type(ev) for ev in got] == [EventRejected, EventReceived]
