"""XmlDecoder and the detail fast path: the same events as parse_event, for less work."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol import CotConnection, EventReceived, Limits, XmlDecoder, control, parse_event
from rallypoint.protocol.connection import _CONTROL_PREFIX
from rallypoint.protocol.detail import build_detail, inner_from_source, serialize_children
from rallypoint.protocol.xmlsafe import new_parser, parse_fragment, strip_declaration
from tests.unit.protocol.conftest import PLI, SAMPLES_DIR, outcome, sample

ALL_SAMPLES = sorted(p.name for p in SAMPLES_DIR.glob("*.xml"))
PARSEABLE = [n for n in ALL_SAMPLES if b"'TIME'" not in sample(n) and "TEMPLATE" not in n]
EXAMPLES = int(os.environ.get("RALLYPOINT_FUZZ_EXAMPLES", "1000"))

HEAD = (
    '<event version="2.0" uid="u-1" type="a-f-G" how="m-g" time="2024-05-01T10:00:00.000Z" '
    'start="2024-05-01T10:00:00.000Z" stale="2024-05-01T10:05:00.000Z">'
    '<point lat="10.0" lon="20.0" hae="1.5" ce="2.0" le="3.0"/>'
)


def event_with(detail: str, head: str = HEAD) -> bytes:
    return (head + detail + "</event>").encode()


def serialized_detail(data: bytes) -> bytes:
    """Detail.xml as serialization alone gives it (no slicing from the source)."""
    root = etree.fromstring(strip_declaration(data), new_parser())
    detail = root.find("detail")
    return build_detail(detail).xml


def same_xml(a: bytes, b: bytes, limits: Limits) -> bool:
    """Two detail contents hold the same elements, attributes and text."""
    return serialize_children(parse_fragment(a, limits)) == serialize_children(parse_fragment(b, limits))


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_decoder_matches_parse_event_on_every_sample(name: str, limits: Limits) -> None:
    data = sample(name)
    assert outcome(XmlDecoder(limits).decode, data) == outcome(lambda d: parse_event(d, limits), data)


def test_one_decoder_reused_over_all_samples_twice(limits: Limits) -> None:
    decoder = XmlDecoder(limits)
    expected = [outcome(lambda d: parse_event(d, limits), sample(n)) for n in ALL_SAMPLES]
    assert sum(isinstance(e, CotEvent) for e in expected) >= 15
    for _ in range(2):
        assert [outcome(decoder.decode, sample(n)) for n in ALL_SAMPLES] == expected


@pytest.mark.parametrize("name", PARSEABLE)
def test_detail_xml_is_the_same_xml_as_serialization(name: str, limits: Limits) -> None:
    event = parse_event(sample(name), limits)
    assert same_xml(event.detail.xml, serialized_detail(sample(name)), limits)


def test_atak_pli_detail_is_byte_identical_to_serialization(limits: Limits) -> None:
    event = parse_event(sample(PLI), limits)
    assert event.detail.xml == serialized_detail(sample(PLI))
    assert event.detail.xml.startswith(b"<takv ") and event.detail.xml.endswith(b'speed="0.0"/>')


@pytest.mark.parametrize(
    ("detail", "head"),
    [
        ('<detail><contact callsign="A"/><!-- </detail> --></detail>', HEAD),
        ('<detail><remarks><![CDATA[ </detail> <b> ]]></remarks></detail>', HEAD),
        ('<detail note="x"><contact callsign="A"/></detail>', HEAD),
        ('<detail ><contact callsign="A"/></detail>', HEAD),
        ('<detail><contact callsign="A"/></detail><detail><x/></detail>', HEAD),
        ('<detail><x:y xmlns:x="urn:x"/></detail>', HEAD),
        ("<detail><x:y/></detail>", HEAD.replace("<event ", '<event xmlns:x="urn:x" ')),
        ('<detail><contact callsign="A"/><marti><dest callsign="B"/></marti>\n<remarks/></detail>', HEAD),
        ("<detail/>", HEAD),
        ("<detail>  </detail>", HEAD),
    ],
)
def test_unusual_details_fall_back_to_serialization(detail: str, head: str, limits: Limits) -> None:
    data = event_with(detail, head)
    expected = serialized_detail(data)
    assert XmlDecoder(limits).decode(data).detail.xml == expected
    assert parse_event(data, limits).detail.xml == expected


def test_slice_keeps_the_senders_spelling_of_the_same_xml(limits: Limits) -> None:
    detail = "<contact callsign='A &amp; B' endpoint=\"*:-1:stcp\" /><remarks>x &gt; y</remarks><a></a>"
    data = event_with(f"<detail>{detail}</detail>")
    event = parse_event(data, limits)
    assert event.detail.xml == detail.encode()
    assert event.detail.callsign == "A & B"
    assert same_xml(event.detail.xml, serialized_detail(data), limits)


def test_inner_from_source_refuses_a_nested_detail(limits: Limits) -> None:
    data = event_with('<detail><wrap><detail><x/></detail></wrap><contact callsign="A"/></detail>')
    root = etree.fromstring(data, new_parser())
    assert inner_from_source(root[1], data) is None
    assert parse_event(data, limits).detail.callsign == "A"


NAMES = st.sampled_from(["contact", "remarks", "__group", "track", "link", "x", "detail2", "status"])
TEXT = st.text(alphabet=st.sampled_from(list("ab <>&'\"=/\t\n\r!]é北")), max_size=8)


def _escape(text: str, quote: str) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;")
    return out.replace(quote, "&quot;" if quote == '"' else "&apos;")


@st.composite
def details(draw: st.DrawFn, depth: int = 0) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        kind = draw(st.sampled_from(["element", "text", "comment", "cdata"] if depth < 3 else ["text"]))
        if kind == "text":
            parts.append(_escape(draw(TEXT), "<").replace(">", draw(st.sampled_from([">", "&gt;"]))))
        elif kind == "comment":
            parts.append("<!--" + draw(st.sampled_from(["", " </detail> ", "x"])) + "-->")
        elif kind == "cdata":
            parts.append("<![CDATA[" + draw(st.sampled_from(["", "</detail>", "a<b"])) + "]]>")
        else:
            name = draw(NAMES)
            attrs = ""
            for i, value in enumerate(draw(st.lists(TEXT, max_size=3))):
                quote = draw(st.sampled_from(['"', "'"]))
                space = draw(st.sampled_from([" ", "  ", "\n", "\t"]))
                attrs += f"{space}a{i}={quote}{_escape(value, quote)}{quote}"
            inner = draw(details(depth + 1))
            closing = draw(st.sampled_from(["/>", " />"])) if not inner and draw(st.booleans()) else None
            parts.append(f"<{name}{attrs}{closing}" if closing else f"<{name}{attrs}>{inner}</{name}>")
    return "".join(parts)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(details(), st.booleans())
def test_decoded_detail_equals_serialization_for_any_detail(inner: str, marti: bool) -> None:
    limits = Limits()
    extra = '<marti><dest callsign="B"/></marti>' if marti else ""
    data = event_with(f"<detail>{extra}{inner}</detail>")
    try:
        expected = parse_event(data, limits)
    except RemoteProtocolError:
        return
    decoded = XmlDecoder(limits).decode(data)
    assert decoded == expected
    reference = serialized_detail(data)
    if expected.detail.xml != reference:
        assert same_xml(expected.detail.xml, reference, limits)
    # Whatever form it takes, Detail.xml rebuilds the same views.
    assert build_detail(parse_fragment(expected.detail.xml, limits) if expected.detail.xml else None) == (
        build_detail(parse_fragment(reference, limits) if reference else None)
    )


def test_type_and_how_are_checked_as_a_pair(limits: Limits) -> None:
    decoder = XmlDecoder(limits)
    good = event_with("<detail/>").replace(b'type="a-f-G" how="m-g"', b'type="a-f-G;note" how="m-g"')
    assert decoder.decode(good).type == "a-f-G;note"
    swapped = good.replace(b'type="a-f-G;note" how="m-g"', b'type="m-g" how="a-f-G;note"')
    with pytest.raises(RemoteProtocolError) as info:
        decoder.decode(swapped)
    assert info.value.reason == "bad_how"
    missing_how = good.replace(b' how="m-g"', b"")
    assert decoder.decode(missing_how).how == "h-g-i-g-o"
    assert decoder.decode(missing_how).how == "h-g-i-g-o"


def test_many_distinct_types_still_decode_and_validate(limits: Limits) -> None:
    decoder = XmlDecoder(limits)
    base = event_with("<detail/>")
    for i in range(1000):
        assert decoder.decode(base.replace(b'type="a-f-G"', b'type="a-f-G-%d"' % i)).type == f"a-f-G-{i}"
    with pytest.raises(RemoteProtocolError) as info:
        decoder.decode(base.replace(b'type="a-f-G"', b'type="a-f-G-0 x"'))
    assert info.value.reason == "bad_type"
    assert decoder.decode(base).type == "a-f-G"


def test_control_types_all_share_the_prefix_the_connection_tests_first() -> None:
    for cot_type in (control.PING, control.PROTOCOL_REQUEST, control.PROTOCOL_SUPPORT, control.TAKP_PREFIX):
        assert cot_type.startswith(_CONTROL_PREFIX)
    conn = CotConnection(Limits())
    conn.receive_data(event_with("<detail/>").replace(b'type="a-f-G"', b'type="t-x-d-d"'))
    ev = conn.next_event()
    assert isinstance(ev, EventReceived) and ev.event.type == "t-x-d-d"
