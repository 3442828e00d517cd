"""XML codec: every real sample, views, validation, encoding and round trips."""

from __future__ import annotations

import msgspec
import pytest

from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.model.cot import ChatInfo, CotEvent, Dest, EmergencyInfo, Point
from rallypoint.protocol import Limits, encode_event, make_event, parse_event
from tests.unit.protocol.conftest import PLI, SAMPLES_DIR, sample

ALL_SAMPLES = sorted(p.name for p in SAMPLES_DIR.glob("*.xml"))
TEMPLATES = {n for n in ALL_SAMPLES if b"'TIME'" in sample(n) or "TEMPLATE" in n}

EVENT = (
    '<event version="2.0" uid="u-1" type="a-f-G" how="m-g" time="2024-05-01T10:00:00.000Z" '
    'start="2024-05-01T10:00:00.000Z" stale="2024-05-01T10:05:00.000Z">'
    '<point lat="{lat}" lon="{lon}" hae="1.5" ce="2.0" le="3.0"/><detail>{detail}</detail></event>'
)


def event_xml(*, lat: str = "10.0", lon: str = "20.0", detail: str = "") -> bytes:
    return EVENT.format(lat=lat, lon=lon, detail=detail).encode()


def without_raw(event: CotEvent) -> CotEvent:
    return msgspec.structs.replace(event, raw=None)


@pytest.mark.parametrize("name", sorted(set(ALL_SAMPLES) - TEMPLATES))
def test_every_real_sample_parses_and_keeps_its_bytes(name: str, limits: Limits) -> None:
    data = sample(name)
    event = parse_event(data, limits)
    assert event.raw is not None
    assert event.raw.startswith(b"<event") and event.raw.endswith(b"</event>")
    assert event.raw in data
    assert b"<marti" not in event.detail.xml
    assert -90 <= event.point.lat <= 90 and event.time > 0


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_with_placeholders_are_rejected_cleanly(name: str, limits: Limits) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(sample(name), limits)
    assert info.value.reason in {"bad_time", "missing_uid"}


def test_pli_views(limits: Limits) -> None:
    event = parse_event(sample(PLI), limits)
    assert (event.uid, event.type, event.how) == ("ANDROID-deadbeef", "a-f-G-U-C", "m-g")
    assert event.time == 1614457944771 and event.start == event.time
    assert event.stale == 1614458319771
    assert event.point == Point(1.234567, -3.141592, -25.7, 9.9, 9999999.0)
    d = event.detail
    assert (d.callsign, d.endpoint) == ("JENNY", "*:-1:stcp")
    assert (d.group_name, d.group_role) == ("Cyan", "Team Member")
    assert (d.battery, d.speed, d.course, d.platform) == (78, 0.0, 80.24833892285461, "ATAK-CIV")
    assert not d.has_marti and d.dests == ()
    assert d.xml.startswith(b"<takv ") and d.xml.endswith(b'<track course="80.24833892285461" speed="0.0"/>')


def test_group_chat_views_and_marti_removed(limits: Limits) -> None:
    event = parse_event(sample("05_chat_group_atak_takserver_comment.xml"), limits)
    assert event.detail.has_marti
    assert event.detail.dests == (Dest(callsign="TRON"),)
    assert event.detail.chat == ChatInfo(
        chatroom="testing",
        chat_id="d3317b6f-bd26-4bed-a5f2-eba268651a0d",
        parent="UserGroups",
        sender_callsign="DEMO2",
        group_owner=True,
        members=(
            "ANDROID-d8c7f552857ee744",
            "ANDROID-304275b91c93405e",
            "S-1-5-21-3476584777-3751678839-889941227-17669",
        ),
    )
    assert event.detail.link_uid == "ANDROID-d8c7f552857ee744"
    assert event.detail.link_relation == "p-p"
    assert b"marti" not in event.detail.xml and b"<hierarchy>" in event.detail.xml
    # Whole-second times.
    assert event.time == 1618849119000


def test_empty_marti_means_broadcast_but_is_recorded(limits: Limits) -> None:
    event = parse_event(sample("03_marker_itak_empty_marti_taky_fixture.xml"), limits)
    assert event.detail.has_marti and event.detail.dests == ()
    assert b"marti" not in encode_event(event)


def test_emergency_view(limits: Limits) -> None:
    event = parse_event(sample("11_emergency_911_alert_takserver_test.xml"), limits)
    assert event.detail.emergency == EmergencyInfo(type="911 Alert", cancel=False)
    cancel = parse_event(event_xml(detail='<emergency cancel="True"/>'), limits)
    assert cancel.detail.emergency == EmergencyInfo(type=None, cancel=True)


def test_first_link_with_uid_is_the_link_view(limits: Limits) -> None:
    event = parse_event(
        event_xml(
            detail='<link point="1,2"/><link uid="parent" type="a-f-G" relation="p-p"/><link uid="x"/>'
        ),
        limits,
    )
    assert (event.detail.link_uid, event.detail.link_type, event.detail.link_relation) == (
        "parent",
        "a-f-G",
        "p-p",
    )


def test_marti_dest_attributes(limits: Limits) -> None:
    event = parse_event(
        event_xml(
            detail='<marti><dest uid="U1"/><dest group="Cyan"/><dest mission="m1"/>'
            '<dest callsign="C"/></marti>'
        ),
        limits,
    )
    assert event.detail.dests == (Dest(uid="U1"), Dest(group="Cyan"), Dest(mission="m1"), Dest(callsign="C"))
    assert event.detail.xml == b""


def test_detail_before_point_and_declaration_and_whitespace(limits: Limits) -> None:
    body = (
        b'<event version="2.0" uid="d" type="t-x-d-d" how="h-g-i-g-o" time="2024-01-01T00:00:00Z" '
        b'start="2024-01-01T00:00:00Z" stale="2024-01-01T00:00:20Z"><detail><link uid="gone" relation="p-p"/>'
        b'</detail><point lat="0" lon="0"/></event>'
    )
    event = parse_event(b"<?xml version='1.0' encoding='UTF-8'?>\n  " + body + b"\n\n", limits)
    assert event.raw == body
    assert event.detail.link_uid == "gone"
    assert event.point.hae == 9999999.0  # missing hae/ce/le read as unknown


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2021-02-27T20:32:24.771Z", 1614457944771),
        ("2021-02-27T20:32:24Z", 1614457944000),
        ("2021-02-27T20:32:24.7712345678Z", 1614457944771),
        ("2021-02-27T22:32:24.771+02:00", 1614457944771),
        ("2021-02-27T20:32:24.5", 1614457944500),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_time_forms(text: str, ms: int, limits: Limits) -> None:
    data = event_xml().replace(b'time="2024-05-01T10:00:00.000Z"', f'time="{text}"'.encode())
    assert parse_event(data, limits).time == ms


def test_missing_how_reads_as_unknown(limits: Limits) -> None:
    assert parse_event(event_xml().replace(b' how="m-g"', b""), limits).how == "h-g-i-g-o"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (event_xml().replace(b'uid="u-1"', b'uid=""'), "missing_uid"),
        (event_xml().replace(b'uid="u-1" ', b""), "missing_uid"),
        (event_xml().replace(b'uid="u-1"', b'uid="' + b"x" * 600 + b'"'), "uid_too_long"),
        (event_xml().replace(b'type="a-f-G"', b'type="a--f"'), "bad_type"),
        (event_xml().replace(b'type="a-f-G"', b'type=""'), "bad_type"),
        (event_xml().replace(b'how="m-g"', b'how="m g"'), "bad_how"),
        (event_xml().replace(b' stale="2024-05-01T10:05:00.000Z"', b""), "bad_time"),
        (event_xml().replace(b"2024-05-01T10:05:00.000Z", b"yesterday"), "bad_time"),
        (event_xml().replace(b"2024-05-01T10:05:00.000Z", b"1969-12-31T23:59:59Z"), "bad_time"),
        (event_xml(lat="91"), "bad_point"),
        (event_xml(lon="-180.5"), "bad_point"),
        (event_xml(lat="north"), "bad_point"),
        (event_xml(lat="nan"), "not_finite"),
        (event_xml(lon="inf"), "not_finite"),
        (event_xml(lat="1e999"), "not_finite"),
        (event_xml().replace(b'hae="1.5"', b'hae="-inf"'), "not_finite"),
        (
            event_xml().replace(b'<point lat="10.0" lon="20.0" hae="1.5" ce="2.0" le="3.0"/>', b""),
            "bad_point",
        ),
        (b"<events/>", "not_event"),
        (b"<foo/>", "not_event"),
        (event_xml()[:-3], "xml_malformed"),
        (event_xml() + b"<x/>", "xml_malformed"),
    ],
)
def test_invalid_events_are_rejected_with_stable_reasons(data: bytes, reason: str, limits: Limits) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_event(data, limits)
    assert info.value.reason == reason
    assert not info.value.fatal


def test_size_limit(limits: Limits) -> None:
    small = Limits(max_event_bytes=200)
    with pytest.raises(LimitExceeded):
        parse_event(event_xml(detail="<remarks>" + "a" * 300 + "</remarks>"), small)


def test_encode_returns_raw_unchanged_when_nothing_to_strip(limits: Limits) -> None:
    data = sample(PLI).strip()
    event = parse_event(data, limits)
    assert encode_event(event) is event.raw
    assert encode_event(event) == data


def test_encode_strips_marti_and_round_trips(limits: Limits) -> None:
    event = parse_event(sample("04_chat_p2p_atak_takserver_comment.xml"), limits)
    out = encode_event(event)
    assert b"marti" not in out and b"<?xml" not in out and not out.endswith(b"\n")
    again = parse_event(out, limits)
    assert again.detail.chat == event.detail.chat
    assert again.detail.xml == event.detail.xml
    assert not again.detail.has_marti
    assert (again.uid, again.type, again.time, again.stale, again.point) == (
        event.uid,
        event.type,
        event.time,
        event.stale,
        event.point,
    )


@pytest.mark.parametrize("name", sorted(set(ALL_SAMPLES) - TEMPLATES))
def test_rebuilt_xml_round_trips_every_sample(name: str, limits: Limits) -> None:
    event = parse_event(sample(name), limits)
    rebuilt = without_raw(event)
    again = parse_event(encode_event(rebuilt), limits)
    expected_detail = msgspec.structs.replace(event.detail, has_marti=False, dests=())
    assert without_raw(again) == msgspec.structs.replace(rebuilt, detail=expected_detail)


def test_attribute_escaping_round_trips(limits: Limits) -> None:
    tricky = 'a&b<c>"d"\te\nf'
    event = make_event(
        uid=tricky,
        type="a-f-G",
        how="m-g",
        time=1,
        start=1,
        stale=2,
        point=Point(1.0, 2.0),
        detail_xml=b'<contact callsign="R&amp;B"/>',
        access="Undefined",
    )
    again = parse_event(encode_event(without_raw(event)), limits)
    assert again.uid == tricky and again.access == "Undefined"
    assert again.detail.callsign == "R&B"


def test_make_event_looks_like_a_received_event(limits: Limits) -> None:
    event = make_event(
        uid="srv",
        type="b-t-f-s",
        how="h-g-i-g-o",
        time=1_700_000_000_000,
        start=1_700_000_000_000,
        stale=1_700_000_020_000,
        point=Point(0.0, 0.0, 0.0, 9999999.0, 9999999.0),
        detail_xml=b"<__chat chatroom='R' id='x' senderCallsign='S' parent='RootContactGroup' "
        b"groupOwner='false'/>"
        b"<link uid='p' type='a-f-G' relation='p-p'/>",
    )
    assert event.raw is not None and event.raw.startswith(b'<event version="2.0" uid="srv"')
    assert event.detail.chat is not None and event.detail.chat.chatroom == "R"
    assert parse_event(event.raw, limits) == event
    assert encode_event(event) is event.raw


def test_make_event_with_marti_has_no_raw_and_never_encodes_it() -> None:
    event = make_event(
        uid="u",
        type="b-t-f",
        how="h-g-i-g-o",
        time=0,
        start=0,
        stale=1,
        point=Point(0.0, 0.0),
        detail_xml=b'<marti><dest callsign="X"/></marti><remarks>hi</remarks>',
    )
    assert event.raw is None and event.detail.dests == (Dest(callsign="X"),)
    assert b"marti" not in encode_event(event) and b"<remarks>hi</remarks>" in encode_event(event)


def test_utf8_text_survives(limits: Limits) -> None:
    event = parse_event(event_xml(detail='<contact callsign="Zoë 北"/><remarks>ça</remarks>'), limits)
    assert event.detail.callsign == "Zoë 北"
    assert "Zoë 北".encode() in event.detail.xml and "ça".encode() in event.detail.xml
    assert parse_event(encode_event(without_raw(event)), limits).detail == event.detail
