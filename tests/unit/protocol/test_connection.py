"""The sans-IO connection: events, pings, negotiation to protobuf, rejects, EOF."""

from __future__ import annotations

import pytest

from rallypoint.errors import LocalProtocolError
from rallypoint.model.cot import Point
from rallypoint.protocol import (
    NEED_DATA,
    ConnectionClosed,
    ConnectionEvent,
    CotConnection,
    EventReceived,
    EventRejected,
    Limits,
    PingReceived,
    ProtoStreamFramer,
    UpgradeRequested,
    WireFormat,
    decode_payload,
    encode_for_wire,
    make_event,
    parse_event,
)
from rallypoint.protocol.pb import takmessage_pb2
from tests.unit.protocol.conftest import PLI, sample

NOW = 1_714_557_600_000


def events(conn: CotConnection) -> list[ConnectionEvent]:
    out: list[ConnectionEvent] = []
    while (ev := conn.next_event()) is not NEED_DATA:
        assert not isinstance(ev, type(NEED_DATA))
        out.append(ev)
        if isinstance(ev, ConnectionClosed | UpgradeRequested):
            break
    return out


def control_event(cot_type: str, detail: bytes, uid: str = "srv-uid") -> bytes:
    event = make_event(
        uid=uid,
        type=cot_type,
        how="m-g",
        time=NOW,
        start=NOW,
        stale=NOW + 60_000,
        point=Point(0.0, 0.0, 0.0, 999999.0, 999999.0),
        detail_xml=detail,
    )
    assert event.raw is not None
    return b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n" + event.raw


def request(version: int = 1) -> bytes:
    return control_event("t-x-takp-q", f'<TakControl><TakRequest version="{version}"/></TakControl>'.encode())


def ping() -> bytes:
    return control_event("t-x-c-t", b"", uid="ANDROID-1-ping")


def test_events_pings_and_rejects_in_xml(pli_bytes: bytes) -> None:
    conn = CotConnection(Limits())
    bad = pli_bytes.replace(b'lat="1.234567"', b'lat="91"')
    conn.receive_data(pli_bytes + ping() + bad + pli_bytes)
    got = events(conn)
    assert [type(e) for e in got] == [EventReceived, PingReceived, EventRejected, EventReceived]
    assert isinstance(got[2], EventRejected) and got[2].reason == "bad_point"
    assert isinstance(got[0], EventReceived) and got[0].event.raw == pli_bytes


def test_eof_delivers_pending_events_then_closes(pli_bytes: bytes) -> None:
    conn = CotConnection(Limits())
    conn.receive_data(pli_bytes)
    conn.receive_data(b"")
    got = events(conn)
    assert [type(e) for e in got] == [EventReceived, ConnectionClosed]
    assert isinstance(conn.next_event(), ConnectionClosed)
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")


def test_pong_shape_in_both_wire_formats() -> None:
    conn = CotConnection(Limits())
    pong = parse_event(conn.pong(NOW), Limits())
    assert (pong.uid, pong.type, pong.how, pong.stale - pong.time) == (
        "takPong",
        "t-x-c-t-r",
        "h-g-i-g-o",
        20_000,
    )
    conn.receive_data(request())
    assert events(conn) == [UpgradeRequested(1)]
    conn.respond_upgrade(True, NOW)
    raw = conn.pong(NOW)
    assert raw[0] == 0xBF
    framer = ProtoStreamFramer(Limits())
    framer.feed(raw)
    payload = framer.next_frame()
    assert payload is not None
    event = decode_payload(payload, Limits()).event
    assert event is not None and event.type == "t-x-c-t-r"


def test_announce() -> None:
    data = CotConnection(Limits()).announce(NOW, "srv-uid")
    event = parse_event(data, Limits())
    assert (event.type, event.uid, event.how, event.stale) == ("t-x-takp-v", "srv-uid", "m-g", NOW + 60_000)
    assert b'<TakControl><TakProtocolSupport version="1"/><TakServerVersionInfo ' in event.detail.xml
    assert CotConnection(Limits(), offer_protobuf=False).announce(NOW, "srv-uid") == b""


@pytest.mark.parametrize("same_chunk", [False, True])
def test_negotiation_end_to_end(same_chunk: bool, pli_bytes: bytes) -> None:
    limits = Limits()
    conn = CotConnection(limits)
    assert conn.wire is WireFormat.XML
    conn.announce(NOW, "srv-uid")
    pli = parse_event(pli_bytes, limits)
    first_proto = encode_for_wire(pli, WireFormat.PROTOBUF)
    if same_chunk:
        conn.receive_data(pli_bytes + request() + first_proto)
    else:
        conn.receive_data(pli_bytes + request())
    assert [type(e) for e in events(conn)] == [EventReceived, UpgradeRequested]
    # Paused until we answer: the bytes after the request may already be protobuf.
    assert conn.next_event() is NEED_DATA
    reply = conn.respond_upgrade(True, NOW)
    response = parse_event(reply, limits)
    assert response.type == "t-x-takp-r" and response.uid == "srv-uid"
    assert b'<TakResponse status="true"/>' in response.detail.xml
    assert conn.wire is WireFormat.PROTOBUF
    if not same_chunk:
        assert conn.next_event() is NEED_DATA
        for i in range(len(first_proto)):  # byte by byte
            conn.receive_data(first_proto[i : i + 1])
    got = events(conn)
    assert len(got) == 1 and isinstance(got[0], EventReceived)
    assert (
        got[0].event.uid == pli.uid and got[0].event.detail.callsign == "JENNY" and got[0].event.raw is None
    )
    # Outgoing traffic now uses 0xBF framing too.
    assert conn.encode(pli)[0] == 0xBF


def test_control_only_protobuf_frames_are_ignored_and_pings_work_after_upgrade() -> None:
    limits = Limits()
    conn = CotConnection(limits)
    conn.receive_data(request())
    assert events(conn) == [UpgradeRequested(1)]
    conn.respond_upgrade(True, NOW)
    control = takmessage_pb2.TakMessage()
    control.takControl.maxProtoVersion = 1
    body = control.SerializeToString()
    ping_event = parse_event(ping(), limits)
    conn.receive_data(b"\xbf" + bytes([len(body)]) + body + encode_for_wire(ping_event, WireFormat.PROTOBUF))
    got = events(conn)
    assert [type(e) for e in got] == [PingReceived]
    conn.receive_data(b"\xbf\x03\xff\xff\xff")
    got = events(conn)
    assert len(got) == 1 and isinstance(got[0], EventRejected) and got[0].reason == "proto_malformed"


def test_declined_upgrade_stays_xml(pli_bytes: bytes) -> None:
    conn = CotConnection(Limits())
    conn.receive_data(request() + pli_bytes)
    assert events(conn) == [UpgradeRequested(1)]
    reply = parse_event(conn.respond_upgrade(False, NOW), Limits())
    assert b'status="false"' in reply.detail.xml
    assert conn.wire is WireFormat.XML
    assert [type(e) for e in events(conn)] == [EventReceived]


def test_upgrade_refused_when_not_offered_or_wrong_version() -> None:
    conn = CotConnection(Limits(), offer_protobuf=False)
    conn.receive_data(request())
    got = events(conn)
    assert len(got) == 1 and isinstance(got[0], EventRejected) and got[0].reason == "takp_unsupported"
    conn = CotConnection(Limits())
    conn.receive_data(request(version=2) + control_event("t-x-takp-v", b""))
    got = events(conn)
    assert [e.reason for e in got if isinstance(e, EventRejected)] == ["takp_unsupported", "takp_unexpected"]
    with pytest.raises(LocalProtocolError):
        conn.respond_upgrade(True, NOW)


def test_sample_negotiation_request_is_understood() -> None:
    text = sample("31_takcontrol_t-x-takp-q_client_request_SPEC.xml").replace(
        b"TIME", b"2024-05-01T10:00:00Z"
    )
    conn = CotConnection(Limits())
    conn.receive_data(text)
    assert events(conn) == [UpgradeRequested(1)]


def test_framing_rejects_surface_as_event_rejected() -> None:
    pli = sample(PLI).strip()
    conn = CotConnection(Limits(max_event_bytes=len(pli)))
    big = b'<event uid="x">' + b"z" * 1000 + b"</event>"
    conn.receive_data(big + pli)
    got = events(conn)
    assert isinstance(got[0], EventRejected) and got[0].reason == "event_too_large"
    assert isinstance(got[1], EventReceived)
