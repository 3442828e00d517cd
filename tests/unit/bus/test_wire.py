"""The compact bus form: every event comes back exactly, byte for byte, and a position is smaller than its XML."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rallypoint.bus.codec import BusCodec
from rallypoint.bus.wire import VOCABULARY, WireAudience, WireDetail, WireEvent, WireOrigin
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import ChatInfo, CotEvent, Dest, Detail, EmergencyInfo, Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event, parse_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience

SAMPLES = sorted(Path("/work/shared/tak/samples").glob("*.xml")) or sorted(
    (Path(__file__).parents[2] / "data" / "samples").glob("*.xml")
)
ORIGIN = Origin(session_id="node-a:tls-1", groups=frozenset({"Cyan"}), principal="alice", node="node-a")
AUDIENCE = Audience(groups=frozenset({"Cyan"}), exclude="node-a:tls-1")


def _round_trip(cot: CotEvent, message_id: str = "node-a:7") -> tuple[CotEvent, int]:
    codec = BusCodec()
    data = codec.encode(message_id, Envelope(cot, ORIGIN, 5), AUDIENCE)
    message = codec.decode(data)
    assert message.id == message_id and message.origin == ORIGIN and message.audience == AUDIENCE
    latest = codec.decode_latest(codec.encode_latest(Envelope(cot, ORIGIN, 5)))
    assert latest.event == message.event
    return message.event, len(data)


def _fields(struct: type[msgspec.Struct]) -> set[str]:
    return set(struct.__struct_fields__)


def test_the_wire_types_carry_every_field_of_the_model() -> None:
    assert _fields(WireDetail) | {"xml"} == _fields(Detail)
    assert _fields(CotEvent) - {"raw", "detail"} <= _fields(WireEvent)
    assert _fields(WireOrigin) == _fields(Origin)
    assert _fields(WireAudience) == _fields(Audience)
    assert len(ChatInfo.__struct_fields__) == 6 and len(Dest.__struct_fields__) == 4
    assert len(EmergencyInfo.__struct_fields__) == 2


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_recorded_sample_comes_back_exactly(path: Path) -> None:
    try:
        cot = parse_event(path.read_bytes(), Limits())
    except RemoteProtocolError:
        pytest.skip("a template, refused by the server itself")
    back, _ = _round_trip(cot)
    assert back == cot and back.raw == cot.raw and back.detail.xml == cot.detail.xml
    # Without its original bytes (as after a protobuf client or a rebuilt event).
    bare = msgspec.structs.replace(cot, raw=None)
    assert _round_trip(bare)[0] == bare


def test_an_atak_position_is_smaller_on_the_bus_than_its_xml() -> None:
    path = next(p for p in SAMPLES if p.name.startswith("01_sa_pli_atak"))
    cot = parse_event(path.read_bytes(), Limits())
    assert cot.raw is not None
    _, size = _round_trip(cot)
    assert size < len(cot.raw)


def test_raw_bytes_holding_a_marker_byte_travel_as_they_are() -> None:
    raw = b'<event version="2.0" uid="u\x01"><point lat="1.0"/>\x1f</event>'
    cot = CotEvent("u\x01", "a-f-G", "m-g", 0, 0, 1, Point(1.0, 2.0), Detail(xml=b"\x1f"), raw=raw)
    assert _round_trip(cot)[0] == cot


def test_an_id_of_another_form_survives() -> None:
    cot = parse_event(SAMPLES[0].read_bytes(), Limits())
    for message_id in ("other-node:3", "node-a:07", "node-a:x", "plain"):
        _round_trip(cot, message_id)


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_opt = st.none() | _text
_xml_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_characters="<>&\"'"), max_size=10)
_times = st.integers(min_value=-5, max_value=253_402_300_799_999)
_floats = st.floats(allow_nan=False) | st.sampled_from([0.0, 1.5, -25.7, 9999999.0]) | st.integers(-180, 180)


@st.composite
def _events(draw: st.DrawFn) -> CotEvent:
    """Events of any content, including raw bytes that mention the vocabulary and field texts."""
    uid = draw(_text | st.sampled_from(["ANDROID-1", "a", "&amp;"]))
    time, stale = draw(_times), draw(_times)
    lat, lon = draw(_floats), draw(_floats)
    pieces = st.sampled_from(
        [
            *VOCABULARY,
            uid.encode(),
            b"2021-02-27T20:32:24.771Z",
            repr(float(lat)).encode(),
            b"\x00",
            b"\x05",
            b'"',
            b"<detail>",
        ]
    ) | st.binary(max_size=8)
    raw = draw(st.none() | st.lists(pieces, max_size=12).map(b"".join))
    xml = draw(st.binary(max_size=8))
    if raw and draw(st.booleans()):
        start = draw(st.integers(0, len(raw)))
        xml = raw[start : draw(st.integers(start, len(raw)))]
    chat = draw(st.none() | st.builds(ChatInfo, _text, _text, _opt, _opt, st.booleans(), st.tuples(_text)))
    detail = Detail(
        xml, draw(_opt), draw(_opt), draw(_opt), draw(_opt), draw(st.booleans()),
        tuple(draw(st.lists(st.builds(Dest, _opt, _opt, _opt, _opt), max_size=2))), chat, draw(_opt), None,
        draw(_opt), draw(st.none() | st.builds(EmergencyInfo, _opt, st.booleans())),
        draw(st.none() | st.integers(-1, 100)), draw(st.none() | _floats), None, draw(_opt), draw(st.booleans()),
    )  # fmt: skip
    return CotEvent(uid, draw(_text), draw(_text), time, draw(_times), stale,
                    Point(lat, lon, draw(_floats), 9999999.0, draw(_floats)), detail, draw(_opt), None,
                    draw(_opt), raw)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_events())
def test_any_event_comes_back_exactly(cot: CotEvent) -> None:
    back, _ = _round_trip(cot)
    assert back == cot and back.raw == cot.raw and back.detail.xml == cot.detail.xml


@settings(max_examples=150, deadline=None)
@given(
    uid=st.from_regex(r"[A-Za-z0-9.\-]{1,20}", fullmatch=True),
    callsign=_xml_text,
    remarks=_xml_text,
    time=st.integers(0, 4_000_000_000_000),
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
)
def test_any_well_formed_event_comes_back_exactly(
    uid: str, callsign: str, remarks: str, time: int, lat: float, lon: float
) -> None:
    detail = f'<contact callsign="{callsign}" endpoint="*:-1:stcp"/><__group role="Team Member" name="Cyan"/>'
    cot = make_event(
        uid=uid,
        type="a-f-G-U-C",
        how="m-g",
        time=time,
        start=time,
        stale=time + 60_000,
        point=Point(lat, lon),
        detail_xml=f"{detail}<remarks>{remarks}</remarks>".encode(),
    )
    assert cot.raw is not None
    reparsed = parse_event(cot.raw, Limits())
    for candidate in (cot, reparsed):
        back, _ = _round_trip(candidate)
        assert back == candidate and back.raw == candidate.raw
