"""Envelopes: each wire format is encoded once however many receivers; emergencies rank first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import msgspec
import pytest

from rallypoint.clock import ManualClock
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.model.cot import CotEvent
from rallypoint.model.cot_type import EMERGENCY_CANCEL, EMERGENCY_TYPES, Priority, delivery_priority, priority_of
from rallypoint.protocol import wire as wire_module
from rallypoint.protocol.connection import NEED_DATA, UpgradeRequested
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.wire import WireFormat
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.routing import envelope as envelope_module
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Router
from rallypoint.services.metrics import ServerMetrics
from rallypoint.transport.context import TransportContext
from rallypoint.transport.session import StreamSession
from tests.conftest import SAMPLES

RECEIVERS_PER_FORMAT = 6


class FakeTransport:
    """Records what a session writes, keeping the very bytes objects it was given."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def is_closing(self) -> bool:
        return False


def _session(ctx: TransportContext, *, protobuf: bool) -> tuple[StreamSession, FakeTransport]:
    session = StreamSession(ctx, transport_name="tcp")
    transport = FakeTransport()
    session.output.attach(cast(Any, transport))
    if protobuf:
        # The real negotiation: the client's TakRequest (sample 31), accepted by the server.
        request = (SAMPLES / "31_takcontrol_t-x-takp-q_client_request_SPEC.xml").read_bytes()
        conn = session.connection
        conn.receive_data(request.replace(b"TIME", b"2024-05-01T10:00:00Z"))
        assert isinstance(conn.next_event(), UpgradeRequested)
        assert conn.next_event() is NEED_DATA
        conn.respond_upgrade(True, 0)
        assert conn.wire is WireFormat.PROTOBUF
    return session, transport


def _alert(*, keep_raw: bool) -> CotEvent:
    event = parse_event((SAMPLES / "11_emergency_911_alert_takserver_test.xml").read_bytes(), Limits())
    # A repeat or any rebuilt event has no original bytes: then XML must be encoded, not copied.
    return event if keep_raw else msgspec.structs.replace(event, raw=None)


@pytest.mark.parametrize("keep_raw", [True, False], ids=["as-received", "rebuilt"])
async def test_each_wire_format_is_encoded_once_for_all_receivers(
    monkeypatch: pytest.MonkeyPatch, keep_raw: bool
) -> None:
    calls: list[WireFormat] = []
    real: Callable[[CotEvent, WireFormat], bytes] = wire_module.encode_for_wire

    def counting(event: CotEvent, fmt: WireFormat) -> bytes:
        calls.append(fmt)
        return real(event, fmt)

    monkeypatch.setattr(envelope_module, "encode_for_wire", counting)
    real_xml: Callable[[CotEvent], bytes] = envelope_module.encode_event

    def counting_xml(event: CotEvent) -> bytes:
        calls.append(WireFormat.XML)
        return real_xml(event)

    monkeypatch.setattr(envelope_module, "encode_event", counting_xml)
    ctx = TransportContext(
        ingest=cast(Any, None), hub=cast(Any, None), metrics=ServerMetrics(), clock=ManualClock(), limits=Limits(),
        principal_of=lambda der: None, access_of=lambda principal: (frozenset(), frozenset()),
    )
    directory = Directory()
    receivers = {WireFormat.XML: [], WireFormat.PROTOBUF: []}  # type: dict[WireFormat, list[FakeTransport]]
    for fmt in receivers:
        for _ in range(RECEIVERS_PER_FORMAT):
            session, transport = _session(ctx, protobuf=fmt is WireFormat.PROTOBUF)
            directory.add(session)
            receivers[fmt].append(transport)
    envelope = Envelope(_alert(keep_raw=keep_raw), Origin(session_id="sender"), 0)
    audience = Router(directory).route(envelope)
    delivered = Dispatcher(directory).deliver(envelope, audience)
    assert delivered == 2 * RECEIVERS_PER_FORMAT
    await asyncio.sleep(0)  # the write coalescer flushes at the end of this loop iteration
    for fmt, transports in receivers.items():
        written = [t.chunks for t in transports]
        assert all(len(chunks) == 1 for chunks in written), written
        first = written[0][0]
        # The same bytes object on every socket: encoded once, shared by all receivers.
        assert all(chunks[0] is first for chunks in written), f"{fmt.name} was encoded per receiver"
        assert first == real(envelope.event, fmt)
    assert sorted(calls, key=lambda f: f.value) == [WireFormat.PROTOBUF, WireFormat.XML]
    # XML received as it goes out is written as received.
    assert (envelope.wire(WireFormat.XML) is envelope.event.raw) is keep_raw


@pytest.mark.parametrize("cot_type", sorted(EMERGENCY_TYPES | {EMERGENCY_CANCEL}))
def test_emergencies_and_their_cancel_have_the_most_urgent_class(cot_type: str) -> None:
    assert priority_of(cot_type) is Priority.EMERGENCY is min(Priority)
    envelope = Envelope(msgspec.structs.replace(_alert(keep_raw=True), type=cot_type), Origin(session_id="s"), 0)
    assert envelope.priority is Priority.EMERGENCY
    for own_group in (True, False):
        assert delivery_priority(envelope.priority, own_group=own_group) is Priority.EMERGENCY


def test_no_other_kind_of_event_shares_the_emergency_class() -> None:
    others = ("a-f-G-U-C", "b-t-f", "b-m-p-s-m", "u-d-r", "b-m-r", "t-x-c-t", "b-f-t-r")
    assert all(priority_of(t) is not Priority.EMERGENCY for t in others)
