"""Learned event shapes decode exactly like the parser: same events, same rejections.

``parse_event`` always parses (fresh hardened parser, no shapes): it is the reference. Every
stream here is decoded by one ``XmlDecoder`` as a connection would, so later events of a shape
go through the shape, and each result must equal the reference's.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rallypoint.loadgen.events import make_identity, xml_event
from rallypoint.protocol import Limits, XmlDecoder, parse_event
from tests.unit.protocol.conftest import SAMPLES_DIR, outcome, sample

ALL_SAMPLES = sorted(p.name for p in SAMPLES_DIR.glob("*.xml"))
EXAMPLES = int(os.environ.get("RALLYPOINT_FUZZ_EXAMPLES", "300"))
_TIMES = re.compile(rb"\b(time|start|stale)=(['\"])[^'\"]*\2")
_LAT = re.compile(rb"\blat=(['\"])[^'\"]*\1")
_REMARKS = re.compile(rb"(<remarks[^>]*>)[^<]*(</remarks>)")


def same_as_parser(stream: list[bytes], limits: Limits) -> XmlDecoder:
    decoder = XmlDecoder(limits)
    for data in stream:
        assert outcome(decoder.decode, data) == outcome(lambda d: parse_event(d, limits), data), data
    return decoder


def variants(data: bytes, count: int) -> list[bytes]:
    """``data`` as a device resends it: new times, latitude and remark each time."""
    out = []
    for k in range(count):
        stamp = f"2024-05-01T10:{k // 60 % 60:02d}:{k % 60:02d}.{k % 1000:03d}Z".encode()
        event = _TIMES.sub(lambda m, s=stamp: m[1] + b"=" + m[2] + s + m[2], data)
        event = _LAT.sub(lambda m, k=k: b"lat=" + m[1] + f"{k / 7:.5f}".encode() + m[1], event, count=1)
        out.append(_REMARKS.sub(lambda m, k=k: m[1] + f"note {k}".encode() + m[2], event, count=1))
    return out


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_resent_decodes_as_parsed(name: str, limits: Limits) -> None:
    same_as_parser(variants(sample(name), 12), limits)


def test_plain_samples_are_read_through_their_shape(limits: Limits) -> None:
    # Double-quoted (ATAK PLI), single-quoted with tabs and newlines (ATAK exports), an alert with text.
    for name in ("01_sa_pli_atak_civ_taky_fixture.xml", "20_atak_export_Marker_Spot.xml",
                 "01b_sa_pli_minimal_taky_fixture.xml", "11_emergency_911_alert_takserver_test.xml"):  # fmt: skip
        decoder = same_as_parser(variants(sample(name), 10), limits)
        assert decoder.shape_hits == 8, name  # the first is parsed, the second teaches the shape


def test_events_with_marti_are_always_parsed(limits: Limits) -> None:
    decoder = same_as_parser(variants(sample("04_chat_p2p_atak_takserver_comment.xml"), 10), limits)
    assert decoder.shape_hits == 0


def test_load_tool_stream_is_read_through_its_shape(limits: Limits) -> None:
    ident = make_identity(3, "shapes")
    stream = [xml_event(ident, 1_714_557_600_000 + k, f"rpbench@{k:019d}") for k in range(20)]
    decoder = same_as_parser(stream, limits)
    assert decoder.shape_hits == 18


HEAD = b'<event version="2.0" uid="u-1" type="a-f-G" how="m-g" time="T" start="T" stale="T">'
PLI = (
    HEAD.replace(b'"T"', b'"2024-05-01T10:00:00.000Z"')
    + b'<point lat="1.5" lon="2.5" hae="3" ce="4" le="5"/><detail><contact callsign="A" endpoint="*:-1:stcp"/>'
    b'<__group name="Cyan" role="Team Member"/><track course="10" speed="1"/><remarks>hi</remarks></detail></event>'
)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'callsign="A"', b'callsign="A<B"'),
        (b'callsign="A"', b'callsign="A&amp;B"'),
        (b'callsign="A"', b'callsign="A\tB"'),
        (b'callsign="A"', b'callsign="A\nB"'),
        (b'callsign="A"', b'callsign="A\x01B"'),
        (b'callsign="A"', b'callsign="A\xffB"'),
        (b'callsign="A"', 'callsign="A\ufffeB"'.encode()),
        (b'callsign="A"', b'callsign="A!"'),
        (b'callsign="A"', b'callsign="xmlns"'),
        (b'callsign="A"', b'callsign="A\'B"'),
        (b'callsign="A"', b'callsign="A>B"'),
        (b"<remarks>hi", b"<remarks>a]]>b"),
        (b"<remarks>hi", b"<remarks>a&b"),
        (b"<remarks>hi", b"<remarks>a\x00b"),
        (b"<remarks>hi", b"<remarks>\xc3("),
        (b"<remarks>hi", b'<remarks>say "hi"'),
        (b"<remarks>hi", b"<remarks>!"),
        (b'lat="1.5"', b'lat="91"'),
        (b'lat="1.5"', b'lat="nan"'),
        (b'uid="u-1"', b'uid=""'),
        (b'type="a-f-G"', b'type="a f"'),
        (b'course="10"', b'course="east"'),
        (b'speed="1"', b'speed="2"'),
        (b"<detail>", b"<detail>text"),
    ],
)
def test_a_changed_value_decodes_as_parsed(old: bytes, new: bytes, limits: Limits) -> None:
    changed = PLI.replace(old, new, 1)
    assert changed != PLI
    decoder = same_as_parser([PLI, PLI, PLI, changed, PLI], limits)
    assert decoder.shape_hits >= 2


def pli(
    time: str,
    *,
    start: str | None = None,
    stale: str = "2024-05-01T10:05:00.000Z",
    uid: str = "u-1",
    lat: str = "1.5",
    how: str = "m-g",
) -> bytes:
    head = (
        f'<event version="2.0" uid="{uid}" type="a-f-G" how="{how}" time="{time}" start="{start or time}"'
        f' stale="{stale}">'
    ).encode()
    return PLI.replace(HEAD.replace(b'"T"', b'"2024-05-01T10:00:00.000Z"'), head).replace(
        b'lat="1.5"', f'lat="{lat}"'.encode()
    )


def test_a_devices_next_reports_decode_as_parsed(limits: Limits) -> None:
    # Times, point and uid changing between reports of one shape: read from the last report where
    # only times and point changed, in full otherwise; every error as the parser's.
    t = [f"2024-05-01T10:00:{k:02d}.000Z" for k in range(10)]
    stream = [
        pli(t[0]),
        pli(t[0]),
        pli(t[1]),
        pli(t[2], lat="2.5"),
        pli(t[3], start=t[2]),
        pli(t[4], stale=t[9]),
        pli("2024-05-01T10:00:5.000Z"),
        pli(t[5], start="yesterday"),
        pli(t[6], stale="2024-13-01T10:00:00.000Z"),
        pli(t[6], lat="91"),
        pli(t[6], lat="nan"),
        pli(t[7], uid="u-2"),
        pli(t[8]),
        pli(t[8], how="m g"),
        pli(t[8], how="h-e"),
        pli(t[9], lat="-3.25"),
        pli(t[9], lat="-3.25"),
    ]
    decoder = same_as_parser(stream, limits)
    assert decoder.shape_hits >= len(stream) - 2


def test_a_rejected_event_is_not_what_the_next_is_read_against(limits: Limits) -> None:
    # A shape reads each event against the last one it accepted: a rejected one in between (same
    # markup, bad value) must change nothing, whether the next event repeats it or the good one.
    bad_lat = PLI.replace(b'lat="1.5"', b'lat="91"')
    bad_time = PLI.replace(b'time="2024-05-01T10:00:00.000Z"', b'time="2024-13-01T10:00:00.000Z"')
    remarks = PLI.replace(b"<remarks>hi", b"<remarks>ho")
    stream = [PLI, PLI, PLI, bad_lat, bad_lat, PLI, bad_time, remarks, bad_time, remarks, PLI, PLI]
    decoder = same_as_parser(stream, limits)
    assert decoder.shape_hits >= 8


# Bytes a value or text may be given in the generated streams: the plain and the hostile.
_TOKENS = [b"a", b"Z", b"0", b"9", b" ", b".", b"-", b":", b"/", b"=", b";", "é".encode(), "😀".encode(),
           b'"', b"'", b"<", b">", b"&", b"!", b"\t", b"\n", b"\r", b"\x00", b"\x01", b"]]>", b"xmlns",
           "\ufffe".encode(), "\uf8ff".encode(), b"\xff", b"\xef\xbf", b"&amp;", b"&#10;", b"<x/>",
           b"2024-05-01T10:00:00Z", b"1.25", b"-7"]  # fmt: skip
_PLAIN = st.lists(st.sampled_from(_TOKENS[:13] + _TOKENS[-3:]), max_size=5).map(b"".join)
_VALUE = st.one_of(_PLAIN, _PLAIN, st.lists(st.sampled_from(_TOKENS), max_size=5).map(b"".join))
_WS = st.sampled_from([b"", b" ", b"\n  ", b"\t", b"\r\n"])
# Detail children: name, attributes (name, default), text or None for an empty element.
_CHILDREN = [
    (b"contact", [(b"callsign", b"ALPHA"), (b"endpoint", b"*:-1:stcp")], None),
    (b"__group", [(b"name", b"Cyan"), (b"role", b"Team Member")], None),
    (b"status", [(b"battery", b"87")], None),
    (b"track", [(b"course", b"80.5"), (b"speed", b"1.0")], None),
    (b"takv", [(b"platform", b"ATAK-CIV"), (b"version", b"5.2")], None),
    (b"link", [(b"uid", b"ANDROID-1"), (b"type", b"a-f-G"), (b"relation", b"p-p")], None),
    (b"link", [(b"point", b"1,2")], None),
    (b"emergency", [(b"type", b"911 Alert"), (b"cancel", b"false")], b"BOB"),
    (b"remarks", [(b"source", b"x")], b"hello"),
    (b"uid", [(b"Droid", b"ALPHA")], None),
    (b"__chat", [(b"chatroom", b"All"), (b"id", b"All"), (b"senderCallsign", b"A")], b'<chatgrp uid0="X" uid1="All"/>'),
]
# Children a shape never covers: the decoder must notice and parse.
_UNUSUAL = [
    (b"remarks", [], b"<![CDATA[a < b]]>"),
    (b"marti", [], b'<dest callsign="B"/>'),
    (b"p:x", [(b"xmlns:p", b"urn:p")], None),
]


@st.composite
def shaped_streams(draw: st.DrawFn, *, evolve: bool = False) -> list[bytes]:
    """A random event shape, written twice as is and then with random values and text.

    ``evolve``: each event changes the previous one (as a device's next report does) or repeats it,
    rather than the first; a rejected event is followed by events built on it.
    """
    quotes = draw(st.sampled_from([b'"', b'"', b"'", None]))  # None: each attribute picks its quote
    head = [(b"version", b"2.0"), (b"uid", b"u-1"), (b"type", b"a-f-G-U-C"), (b"how", b"m-g"),
            (b"time", b"2024-05-01T10:00:00.000Z"), (b"start", b"2024-05-01T10:00:00.000Z"),
            (b"stale", b"2024-05-01T10:05:00.000Z")]  # fmt: skip
    head = draw(st.permutations(head))
    point = draw(st.permutations([(b"lat", b"1.5"), (b"lon", b"2.5"), (b"hae", b"3"), (b"ce", b"4"), (b"le", b"5")]))
    children = draw(st.lists(st.sampled_from(_CHILDREN), min_size=1, max_size=6))
    if draw(st.integers(0, 3)) == 0:
        children.insert(draw(st.integers(0, len(children))), draw(st.sampled_from(_UNUSUAL)))
    comment = draw(st.integers(0, 5)) == 0
    ws = draw(_WS)
    slots: list[bytes] = []
    template: list[object] = []  # bytes, or an int: the slot whose value goes there

    def attributes(pairs: list[tuple[bytes, bytes]]) -> None:
        for name, default in pairs:
            quote = quotes or draw(st.sampled_from([b'"', b"'"]))
            template.append(b" " + name + b"=" + quote)
            template.append(len(slots))
            slots.append(default)
            template.append(quote)

    template.append(b"<event")
    attributes(head)
    template.append(b">" + ws + b"<point")
    attributes(point)
    template.append(b"/>" + ws + b"<detail>")
    for name, attrs, text in children:
        template.append(ws + b"<" + name)
        attributes(attrs)
        if text is None:
            template.append(b"/>")
        else:
            template.extend([b">", len(slots), b"</" + name + b">"])
            slots.append(text)
    if comment:
        template.append(b"<!-- note -->")
    template.append(ws + b"</detail></event>")

    def render(values: list[bytes]) -> bytes:
        return b"".join(values[part] if isinstance(part, int) else part for part in template)  # type: ignore[misc]

    stream = [render(slots), render(slots)]
    values = list(slots)
    for _ in range(draw(st.integers(1, 10 if evolve else 6))):
        if not evolve:
            values = list(slots)
        for index in draw(st.lists(st.integers(0, len(slots) - 1), max_size=2 if evolve else 4)):
            values[index] = draw(_VALUE) if not evolve or draw(st.booleans()) else slots[index]
        stream.append(render(values))
    return stream


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=shaped_streams())
def test_generated_streams_decode_as_parsed(stream: list[bytes]) -> None:
    same_as_parser(stream, Limits())


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=shaped_streams(evolve=True))
def test_evolving_streams_decode_as_parsed(stream: list[bytes]) -> None:
    # Each event is read against the last one its shape accepted: pieces that did not change since
    # are not checked again, and an unchanged <event> and <point> reuse the last event's fields.
    same_as_parser(stream, Limits())


@settings(max_examples=EXAMPLES // 3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=shaped_streams(), second=shaped_streams(), order=st.lists(st.booleans(), min_size=4, max_size=20))
def test_interleaved_shapes_decode_as_parsed(first: list[bytes], second: list[bytes], order: list[bool]) -> None:
    # Two shapes from one device, in any order: a shape must never read the other's events.
    stream = [(first if pick else second)[i % len(first if pick else second)] for i, pick in enumerate(order)]
    same_as_parser(first[:2] + second[:2] + stream, Limits())
