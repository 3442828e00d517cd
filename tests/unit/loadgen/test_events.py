"""Event templates: size, stamping, and the protobuf form."""

from __future__ import annotations

import pytest

from rallypoint.loadgen.counting import ProtoFrameCounter, XmlCounter, read_stamp
from rallypoint.loadgen.events import (
    STAMP_MARK,
    TemplateSet,
    cot_time,
    encode_varint,
    load_takmessage_class,
    make_identity,
    stamp,
)

NOW_MS = 1_718_000_000_123
STAMP_NS = 1_718_000_000_123_456_789


def test_cot_time_has_millisecond_precision() -> None:
    assert cot_time(NOW_MS) == "2024-06-10T06:13:20.123Z"


def test_varint() -> None:
    assert encode_varint(0) == b"\x00"
    assert encode_varint(300) == b"\xac\x02"


def test_xml_template_is_a_realistic_pli() -> None:
    ident = make_identity(7, "run1")
    templates = TemplateSet([ident], "xml")
    templates.refresh(NOW_MS)
    event = stamp(templates.parts[7], STAMP_NS)
    assert 600 <= len(event) <= 700
    for needle in (b'type="a-f-G-U-C"', b'callsign="bench-7"', b"<__group", b"<takv", b"<track", b"<status"):
        assert needle in event
    assert read_stamp(event, event.find(STAMP_MARK)) == STAMP_NS
    assert XmlCounter().feed(event) == 1


def test_uids_are_unique_per_client() -> None:
    assert make_identity(1, "r").uid != make_identity(2, "r").uid


def test_warmup_event_carries_no_stamp() -> None:
    ident = make_identity(0, "r")
    assert STAMP_MARK not in TemplateSet([ident], "xml").warmup_event(ident, NOW_MS)


def test_protobuf_template_frames_a_takmessage_with_the_stamp() -> None:
    try:
        takmessage = load_takmessage_class()
    except RuntimeError:
        pytest.skip("no TakMessage bindings installed")
    ident = make_identity(3, "run1")
    templates = TemplateSet([ident], "protobuf")
    templates.refresh(NOW_MS)
    frame = stamp(templates.parts[3], STAMP_NS)
    assert frame[0] == 0xBF
    assert ProtoFrameCounter().feed(frame) == 1
    assert read_stamp(frame, frame.find(STAMP_MARK)) == STAMP_NS
    # Strip the 0xBF + varint header and decode.
    i = 1
    while frame[i] & 0x80:
        i += 1
    msg = takmessage()
    msg.ParseFromString(frame[i + 1 :])
    assert msg.cotEvent.uid == ident.uid
    assert msg.cotEvent.detail.contact.callsign == "bench-3"
    assert msg.cotEvent.sendTime == NOW_MS
    assert f"{STAMP_NS}" in msg.cotEvent.detail.xmlDetail
