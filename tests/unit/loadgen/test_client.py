"""A bench connection driven with bytes: counting into the tally and TAK protocol negotiation."""

from __future__ import annotations

import asyncio
import time

import pytest

from rallypoint.loadgen.client import BenchConnection, Tally
from rallypoint.loadgen.diagnosis import NegotiationFailed
from rallypoint.loadgen.events import TemplateSet, control_event, frame_payload, make_identity, stamp
from rallypoint.loadgen.report import LatencySampler


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _connection(proto: str) -> tuple[BenchConnection, Tally, FakeTransport]:
    tally = Tally(LatencySampler())
    conn = BenchConnection(make_identity(1, "t"), proto, tally)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, tally, transport


def _stamped_xml(index: int, sent_ns: int) -> bytes:
    ident = make_identity(index, "t")
    templates = TemplateSet([ident], "xml")
    templates.refresh(sent_ns // 1_000_000)
    return stamp(templates.parts[index], sent_ns)


async def test_xml_deliveries_are_counted_and_sampled() -> None:
    conn, tally, _ = _connection("xml")
    sent_ns = time.time_ns() - 5_000_000  # 5 ms ago
    data = _stamped_xml(2, sent_ns) + _stamped_xml(3, sent_ns)
    conn.data_received(data[:100])
    conn.data_received(data[100:])
    assert tally.delivered == 2
    assert conn.received == 2
    samples = list(tally.sampler.samples)
    assert samples and all(s >= 5000 for s in samples)


async def test_tally_wakes_when_target_reached() -> None:
    conn, tally, _ = _connection("xml")
    tally.aim(2)
    conn.data_received(_stamped_xml(2, time.time_ns()))
    assert not tally.reached.is_set()
    conn.data_received(_stamped_xml(3, time.time_ns()))
    assert tally.reached.is_set()


async def test_not_counting_connection_leaves_tally_alone() -> None:
    conn, tally, _ = _connection("xml")
    conn.counting = False
    conn.data_received(_stamped_xml(2, time.time_ns()))
    assert tally.delivered == 0


async def test_unexpected_close_is_a_disconnect_but_close_is_not() -> None:
    conn, tally, _ = _connection("xml")
    conn.connection_lost(ConnectionResetError())
    assert (tally.disconnects, tally.errors) == (1, 1)
    other, tally2, _ = _connection("xml")
    other.close()
    other.connection_lost(None)
    assert tally2.disconnects == 0


async def test_protobuf_negotiation_then_frames_are_counted() -> None:
    conn, tally, transport = _connection("protobuf")
    assert not conn.ready.done()
    offer = control_event("srv-1", "t-x-takp-v", '<TakProtocolSupport version="1"/>', 0)
    conn.data_received(offer[:50])
    assert transport.written == []
    conn.data_received(offer[50:])
    request = b"".join(transport.written)
    assert b"t-x-takp-q" in request
    assert b'uid="srv-1"' in request
    assert b'<TakRequest version="1"/>' in request
    response = control_event("srv-1", "t-x-takp-r", '<TakResponse status="true"/>', 0)
    # A frame arriving in the same read as the response is counted after the switch.
    conn.data_received(response + frame_payload(b"RPBENCH-t-000002"))
    await asyncio.wait_for(conn.ready, 1)
    assert tally.delivered == 1
    # Only this run's uids count; anyone else's frames are received and tallied apart.
    conn.data_received(frame_payload(b"RPBENCH-t-000003") * 3 + frame_payload(b"demo-unit-7"))
    assert tally.delivered == 4
    assert conn.other == 1


async def test_protobuf_refusal_fails_ready() -> None:
    conn, _, _ = _connection("protobuf")
    conn.data_received(control_event("s", "t-x-takp-v", '<TakProtocolSupport version="1"/>', 0))
    conn.data_received(control_event("s", "t-x-takp-r", '<TakResponse status="false"/>', 0))
    with pytest.raises(NegotiationFailed):
        await conn.ready


async def test_close_during_negotiation_fails_ready() -> None:
    conn, _, _ = _connection("protobuf")
    conn.connection_lost(None)
    with pytest.raises(NegotiationFailed):
        await conn.ready


async def test_other_traffic_is_received_but_not_counted() -> None:
    conn, tally, _ = _connection("xml")
    demo = b'<event version="2.0" uid="DEMO-1" type="a-h-G"><point lat="1" lon="2"/></event>'
    other_run = _stamped_xml(4, time.time_ns()).replace(b"RPBENCH-t-", b"RPBENCH-x-")
    conn.data_received(demo + _stamped_xml(2, time.time_ns()) + other_run + demo)
    assert tally.delivered == 1 and conn.received == 1
    assert conn.other == 3


async def test_server_closing_a_connection_records_why_and_uncounts_it() -> None:
    conn, tally, _ = _connection("xml")
    conn.data_received(_stamped_xml(2, time.time_ns()))
    assert tally.delivered == 1
    tally.aim(5)
    conn.connection_lost(ConnectionResetError(104, "Connection reset by peer"))
    assert conn.lost == "reset by the server"
    assert tally.delivered == 0  # deliveries to a lost connection no longer count
    assert tally.reached.is_set()  # waiters re-evaluate their target

    quiet, _, _ = _connection("xml")
    quiet.connection_lost(None)
    assert quiet.lost == "closed by the server right after connecting"
