"""Stream framers: partial reads, many events per read, garbage, oversized frames, resync."""

from __future__ import annotations

import pytest

from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.protocol import Limits, ProtoStreamFramer, XmlStreamFramer
from rallypoint.protocol.wire import encode_varint
from tests.unit.protocol.conftest import sample

EV = b'<event version="2.0" uid="u{n}" type="a-f-G" how="m-g"><point lat="0" lon="0"/></event>'


def ev(n: int) -> bytes:
    return EV.replace(b"{n}", str(n).encode())


def drain(framer: XmlStreamFramer | ProtoStreamFramer) -> tuple[list[bytes], list[str]]:
    frames: list[bytes] = []
    errors: list[str] = []
    while True:
        try:
            frame = framer.next_frame()
        except RemoteProtocolError as exc:
            assert not exc.fatal
            errors.append(exc.reason)
            continue
        if frame is None:
            return frames, errors
        frames.append(frame)


def feed_all(
    framer: XmlStreamFramer | ProtoStreamFramer, data: bytes, step: int
) -> tuple[list[bytes], list[str]]:
    frames: list[bytes] = []
    errors: list[str] = []
    for i in range(0, len(data), step):
        framer.feed(data[i : i + step])
        got, errs = drain(framer)
        frames += got
        errors += errs
    return frames, errors


# --- XML -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 2, 7, 64, 100_000])
def test_xml_partial_reads_and_many_events_per_read(step: int) -> None:
    events = [ev(i) for i in range(5)] + [
        sample("05_chat_group_atak_takserver_comment.xml").split(b"?>", 1)[1].strip()
    ]
    data = b"".join(
        b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n" + e + b"\n\n" for e in events
    )
    frames, errors = feed_all(XmlStreamFramer(Limits()), data, step)
    assert frames == events and errors == []


def test_xml_skips_garbage_auth_and_lookalike_tags() -> None:
    framer = XmlStreamFramer(Limits())
    framer.feed(
        b'<auth><cot username="a" password="b" uid="c"/></auth>'
        + ev(1)
        + b"garbage!!<events>not one</events>\r\n  \x00\xff"
        + ev(2)
        + b"<eve"
    )
    frames, errors = drain(framer)
    assert frames == [ev(1), ev(2)] and errors == []
    assert framer.skipped_bytes > 0 and framer.buffered == 4  # the partial "<eve" is kept
    framer.feed(b"nt uid='x'/></event>")
    assert drain(framer)[0] == [b"<event uid='x'/></event>"]


def test_xml_oversized_event_is_reported_then_the_next_one_arrives() -> None:
    limits = Limits(max_event_bytes=300)
    big = b'<event uid="big"><detail>' + b"x" * 5000 + b"</detail></event>"
    for step in (1, 50, 10_000):
        framer = XmlStreamFramer(limits)
        frames, errors = feed_all(framer, ev(1) + big + ev(2), step)
        assert frames == [ev(1), ev(2)]
        assert errors == ["event_too_large"]
        assert framer.discarded_frames == 1


def test_xml_buffer_stays_bounded_by_the_event_limit() -> None:
    limits = Limits(max_event_bytes=1000)
    framer = XmlStreamFramer(limits)
    for _ in range(200):
        framer.feed(b"no events here, just noise " * 5)
        drain(framer)
        assert framer.buffered <= len(b"<event")
    framer.feed(b"<event " + b"y" * 3000)
    _, errors = drain(framer)
    assert errors == ["event_too_large"] and framer.buffered < 10


def test_xml_feeding_past_the_buffer_limit_is_fatal() -> None:
    framer = XmlStreamFramer(Limits(max_buffer_bytes=100))
    with pytest.raises(LimitExceeded) as info:
        framer.feed(b"a" * 101)
    assert info.value.fatal


def test_xml_take_remaining_hands_over_unread_bytes() -> None:
    framer = XmlStreamFramer(Limits())
    framer.feed(ev(1) + b"\xbf\x05hello")
    assert framer.next_frame() == ev(1)
    assert framer.take_remaining() == b"\xbf\x05hello" and framer.buffered == 0


# --- protobuf -------------------------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    return b"\xbf" + encode_varint(len(payload)) + payload


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_proto_partial_reads_and_many_frames(step: int) -> None:
    payloads = [b"a", b"b" * 127, b"c" * 128, b"d" * 300]
    frames, errors = feed_all(ProtoStreamFramer(Limits()), b"".join(frame(p) for p in payloads), step)
    assert frames == payloads and errors == []


def test_proto_garbage_before_magic_is_skipped_and_counted() -> None:
    framer = ProtoStreamFramer(Limits())
    framer.feed(b"junk" + frame(b"one") + b"\x00\x01" + frame(b"two"))
    assert drain(framer) == ([b"one", b"two"], [])
    assert framer.skipped_bytes == 6


def test_proto_empty_frames_are_skipped() -> None:
    framer = ProtoStreamFramer(Limits())
    framer.feed(b"\xbf\x00" + frame(b"x"))
    assert drain(framer) == ([b"x"], [])


def test_proto_bad_varint_is_reported_and_stream_resyncs() -> None:
    framer = ProtoStreamFramer(Limits())
    framer.feed(b"\xbf" + b"\xff" * 10 + b"\x01" + frame(b"ok"))
    frames, errors = drain(framer)
    assert frames == [b"ok"] and errors == ["bad_varint"]


def test_proto_oversized_frame_is_skipped_by_length() -> None:
    limits = Limits(max_event_bytes=100)
    big = frame(b"\xbf" * 500)  # the payload is full of magic bytes: it must not be rescanned
    for step in (1, 64, 10_000):
        frames, errors = feed_all(ProtoStreamFramer(limits), big + frame(b"next"), step)
        assert frames == [b"next"] and errors == ["event_too_large"]


def test_proto_absurd_length_is_treated_as_garbage() -> None:
    framer = ProtoStreamFramer(Limits())
    framer.feed(b"\xbf" + encode_varint(2**60) + frame(b"after"))
    frames, errors = drain(framer)
    assert errors == ["event_too_large"] and frames[-1] == b"after"


def test_proto_partial_frame_waits() -> None:
    framer = ProtoStreamFramer(Limits())
    data = frame(b"z" * 200)
    framer.feed(data[:-1])
    assert framer.next_frame() is None
    framer.feed(data[-1:])
    assert framer.next_frame() == b"z" * 200


def test_a_pending_declaration_never_holds_more_than_one_event_of_bytes() -> None:
    limits = Limits(max_event_bytes=200, max_buffer_bytes=64 * 1024)
    framer = XmlStreamFramer(limits)
    framer.feed(b"<?xml " + b"x" * 300)
    assert framer.next_frame() is None
    assert framer.buffered <= limits.max_event_bytes
    framer.feed(b'?><event uid="a"><point lat="0" lon="0"/></event>')
    assert framer.next_frame() == b'<event uid="a"><point lat="0" lon="0"/></event>'
    assert framer.garbage_bytes > 0
