"""The bus codec: every field of a publication survives the trip; hostile sizes and bytes are refused and counted."""

from __future__ import annotations

import msgspec
import pytest

from rallypoint.bus.codec import BusCodec, BusMessage
from rallypoint.clock import ManualClock
from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.model.cot import CotEvent, Dest
from rallypoint.model.cot_type import Priority
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from tests.support.picture import chat, event, marker, sample

CLOCK = ManualClock()
ORIGIN = Origin(session_id="node-a:s-1", groups=frozenset({"Cyan", "__ANON__"}), principal="alice", node="node-a")


def _round_trip(cot: CotEvent, audience: Audience, **kw: bool) -> tuple[Envelope, BusMessage]:
    codec = BusCodec()
    envelope = Envelope(cot, ORIGIN, 1_700_000_000_123, **kw)
    message = codec.decode(codec.encode("node-a:42", envelope, audience))
    assert message.id == "node-a:42" and message.audience == audience
    return envelope, message


@pytest.mark.parametrize("cot", [
    pytest.param(marker(CLOCK, "m-1"), id="marker with raw bytes"),
    pytest.param(chat(CLOCK, "ANDROID-1", room="Ops", chat_id="ops", members=("b", "c")), id="chat"),
    pytest.param(event(CLOCK, "d-1", "b-m-p-s-m", '<marti><dest uid="X"/><dest mission="M"/></marti>'), id="dests"),
    pytest.param(event(CLOCK, "e-1", "b-a-o-tbl", '<emergency type="911 Alert">A</emergency>'), id="emergency"),
    pytest.param(sample(CLOCK, "01_sa_pli_atak_civ_taky_fixture.xml"), id="recorded ATAK SA"),
])
def test_an_event_and_its_envelope_survive(cot: CotEvent) -> None:
    audience = Audience(
        groups=frozenset({"Cyan"}), dests=(Dest(uid="b-1"), Dest(mission="M")), team="Cyan",
        sessions=("node-b:s-9",), exclude="node-a:s-1", explicit=True, unresolved=(Dest(callsign="GONE"),),
        delivery_only=True,
    )
    envelope, message = _round_trip(cot, audience, repeat=True)
    back = message.envelope()
    assert back.event == cot and back.event.raw == cot.raw and back.event.detail == cot.detail
    assert (back.origin, back.received_ms, back.priority, back.repeat) == (ORIGIN, envelope.received_ms,
                                                                           envelope.priority, True)


def test_a_given_priority_is_kept() -> None:
    _, message = _round_trip(marker(CLOCK, "m"), Audience(groups=frozenset({"Cyan"})), priority=Priority.EMERGENCY)
    assert message.envelope().priority is Priority.EMERGENCY


def test_a_message_over_the_limit_is_refused_and_counted() -> None:
    big = event(CLOCK, "big", "b-m-p-s-m", f"<remarks>{'x' * 5000}</remarks>")
    codec = BusCodec(max_bytes=4096)
    with pytest.raises(LimitExceeded) as refused:
        codec.encode("a:1", Envelope(big, ORIGIN, 0), Audience())
    assert refused.value.limit == 4096 and refused.value.got > 4096
    with pytest.raises(LimitExceeded):
        codec.decode(BusCodec().encode("a:1", Envelope(big, ORIGIN, 0), Audience()))
    assert codec.statistics().oversize == 2 and codec.statistics().encoded == 0


@pytest.mark.parametrize("data", [b"", b"\xc1", b"garbage", msgspec.msgpack.encode({"id": "a:1"})])
def test_bytes_that_are_no_bus_message_are_refused_and_counted(data: bytes) -> None:
    codec = BusCodec()
    with pytest.raises(RemoteProtocolError) as refused:
        codec.decode(data)
    assert refused.value.reason == "bus_message_malformed" and codec.statistics().malformed == 1


def test_a_latest_state_value_survives() -> None:
    codec = BusCodec()
    envelope = Envelope(marker(CLOCK, "m-1"), ORIGIN, 99)
    back = codec.decode_latest(codec.encode_latest(envelope))
    assert (back.event, back.origin, back.received_ms) == (envelope.event, ORIGIN, 99)
