"""Exercise marking on the way in: ``opex="e-..."`` and ``<__rallypoint_exercise>``, XML and protobuf alike."""

from __future__ import annotations

import pytest

from rallypoint.errors import RemoteProtocolError
from rallypoint.protocol import Limits, XmlDecoder, parse_event
from rallypoint.protocol.proto_codec import decode_payload, encode_payload


def marked(k: int = 0, *, opex: str = "e-drill_1", mark: str = '<__rallypoint_exercise id="drill_1" unit="u7"/>',
           ) -> bytes:
    stamp = f"2026-05-01T10:00:{k:02d}.000Z"
    opex_attr = f' opex="{opex}"' if opex else ""
    return (
        f'<event version="2.0" uid="SIM-7" type="a-f-G-U-C" how="m-g"{opex_attr} time="{stamp}" start="{stamp}"'
        f' stale="2026-05-01T10:05:00.000Z"><point lat="{50 + k / 100}" lon="8.5" hae="0" ce="5" le="5"/>'
        f'<detail><contact callsign="Sim 7"/>{mark}</detail></event>'
    ).encode()


def test_both_marks_name_the_exercise_through_the_parser_and_learned_shapes(limits: Limits) -> None:
    decoder = XmlDecoder(limits)
    events = [decoder.decode(marked(k)) for k in range(6)]
    assert decoder.shape_hits >= 3  # later events of the shape are read without parsing
    for event in events:
        assert event.exercise == "drill_1"
        assert event.detail.exercise is not None and event.detail.exercise.unit == "u7"
        assert b"__rallypoint_exercise" in event.detail.xml  # kept for receivers and history


def test_either_mark_alone_is_enough_and_other_opex_is_live(limits: Limits) -> None:
    assert parse_event(marked(opex=""), limits).exercise == "drill_1"
    assert parse_event(marked(mark=""), limits).exercise == "drill_1"
    assert parse_event(marked(opex="o-", mark=""), limits).exercise is None
    assert parse_event(marked(opex="s-replay", mark=""), limits).exercise is None
    inject = parse_event(marked(mark='<__rallypoint_exercise id="drill_1" inject="cas" kind="chat"/>'), limits)
    assert inject.detail.exercise is not None
    assert (inject.detail.exercise.inject, inject.detail.exercise.kind) == ("cas", "chat")


@pytest.mark.parametrize(
    ("opex", "mark"),
    [
        ("e-bad id", ""),
        ("e-", ""),
        ("e-" + "x" * 65, ""),
        ("", '<__rallypoint_exercise unit="u7"/>'),
        ("", '<__rallypoint_exercise id="a/b"/>'),
        ("e-one", '<__rallypoint_exercise id="two"/>'),
    ],
)
def test_malformed_or_contradictory_marks_are_rejected(limits: Limits, opex: str, mark: str) -> None:
    data = marked(opex=opex, mark=mark)
    with pytest.raises(RemoteProtocolError, match="bad_exercise"):
        parse_event(data, limits)
    decoder = XmlDecoder(limits)
    decoder.decode(marked(0))
    decoder.decode(marked(1))
    with pytest.raises(RemoteProtocolError, match="bad_exercise"):
        decoder.decode(data)  # same refusal when the shape is known


def test_protobuf_keeps_opex_and_the_marker(limits: Limits) -> None:
    event = parse_event(marked(), limits)
    again = decode_payload(encode_payload(event), limits).event
    assert again.opex == "e-drill_1"
    assert again.exercise == "drill_1"
    assert again.detail.exercise == event.detail.exercise
