"""A link budget on a compressed stream: charged what is written, never more than the budget allows."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from rallypoint.clock import ManualClock
from rallypoint.model.cot_type import Priority
from rallypoint.protocol import Limits, ProtoStreamFramer, WireFormat, control, decode_payload, encode_for_wire
from rallypoint.protocol.compression import StreamDecompressor, deflate_bound
from rallypoint.services.metrics import ServerMetrics
from rallypoint.transport.context import TransportContext
from rallypoint.transport.session import StreamSession
from tests.unit.delivery.support import envelope
from tests.unit.delivery.test_session_budget import FakeTransport, wait_for

RATE = 20_000.0
NOW = 1_714_557_600_000


def compressed_session(clock: ManualClock, *, rate: float = RATE) -> tuple[StreamSession, FakeTransport, int]:
    """A session that negotiated compression (budgeted unless ``rate`` is 0); also where compressed output starts."""
    ctx = TransportContext(
        ingest=cast(Any, None),
        hub=cast(Any, None),
        metrics=ServerMetrics(),
        clock=clock,
        limits=Limits(),
        principal_of=lambda der: None,
        access_of=lambda principal: (frozenset(), frozenset()),
        session_budget_bytes_per_s=rate,
        offer_compression=True,
    )
    session = StreamSession(ctx, transport_name="tcp")
    session.apply_budget()
    transport = FakeTransport()
    session.output.attach(cast(Any, transport))
    request = control.request("rallypoint", NOW, compression=control.DEFLATE)
    session.data_received(encode_for_wire(request, WireFormat.XML))
    response = transport.written
    assert b"t-x-takp-r" in response and b'<RallypointCompression method="deflate"/>' in response
    return session, transport, len(response)


def uids_in(compressed: bytes) -> list[str]:
    inflate = StreamDecompressor()
    framer = ProtoStreamFramer(Limits())
    framer.feed(inflate.decompress(compressed))
    uids = []
    while (frame := framer.next_frame()) is not None:
        event = decode_payload(frame, Limits()).event
        assert event is not None
        uids.append(event.uid)
    return uids


async def test_compressed_session_is_charged_written_bytes_and_stays_within_budget() -> None:
    clock = ManualClock()
    session, transport, start = compressed_session(clock)
    pacing = session.output.pacing
    assert pacing is not None
    policy = pacing.policy
    burst = max(deflate_bound(Limits().max_event_bytes), int(RATE * 2))
    assert policy.budget.burst_bytes == burst
    frame_size = len(envelope(Priority.POSITION, "u0000", tag=0).wire(WireFormat.PROTOBUF))
    for i in range(8000):
        session.offer(envelope(Priority.POSITION, f"u{i:04d}", tag=i))
    session.flush_pending()
    # The clock has not moved: the compressed bytes stay within the burst, and the budget was
    # charged exactly what went out (the worst-case charges were given back).
    assert 0 < len(transport.written) <= burst
    # Charged too: the upgrade answer before ``start`` (protocol replies count against the budget).
    assert policy.sent_bytes == len(transport.written)
    # Each frame was charged its worst case when offered, so this first batch stopped early; what
    # compression saved was given back, and the queued positions use it at the same instant.
    await wait_for(lambda: len(uids_in(transport.written[start:])) * frame_size > burst)
    assert len(transport.written) <= burst
    assert policy.sent_bytes == len(transport.written)
    emergency = envelope(Priority.EMERGENCY, "sos", tag=99_999)
    session.offer(emergency)
    clock.advance(1.0)
    await wait_for(lambda: "sos" in uids_in(transport.written[start:]))
    assert len(transport.written) <= burst + RATE * 1.0
    assert policy.sent_bytes == len(transport.written)
    session.connection_lost(None)
    await asyncio.sleep(0)


def test_a_drained_outbox_goes_out_in_batches_each_compressed_once() -> None:
    session, transport, start = compressed_session(ManualClock(), rate=0.0)
    assert session.output.pacing is None
    session.pause_writing()  # the receiver fell behind: deliveries queue (and coalesce)
    for i in range(300):
        session.offer(envelope(Priority.POSITION, f"u{i % 100:04d}", tag=i))
    writes_before = len(transport.chunks)
    session.resume_writing()
    drained = transport.chunks[writes_before:]
    # Latest per uid, in one write with one sync flush (a flush per frame would cost ~10 B each).
    assert len(drained) == 1 and drained[0].endswith(b"\x00\x00\xff\xff")
    assert uids_in(transport.written[start:]) == [f"u{i:04d}" for i in range(100)]
    session.connection_lost(None)
