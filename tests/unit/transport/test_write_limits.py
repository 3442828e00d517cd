"""How a stream session writes to its transport: TLS writes and water marks are bounded."""

from __future__ import annotations

from typing import Any, cast

from rallypoint.clock import ManualClock
from rallypoint.model.cot_type import Priority
from rallypoint.protocol.limits import Limits
from rallypoint.services.metrics import ServerMetrics
from rallypoint.transport.context import TransportContext
from rallypoint.transport.session import StreamSession
from rallypoint.transport.write_limits import TLS_WRITE_BUFFER_HIGH, TLS_WRITE_CHUNK, write_limits
from tests.unit.delivery.support import envelope
from tests.unit.delivery.test_session_budget import FakeTransport


def session_writing_to(transport: FakeTransport, *, tls: bool) -> StreamSession:
    ctx = TransportContext(
        ingest=cast(Any, None),
        hub=cast(Any, None),
        metrics=ServerMetrics(),
        clock=ManualClock(),
        limits=Limits(),
        principal_of=lambda der: None,
        access_of=lambda principal: (frozenset(), frozenset()),
    )
    session = StreamSession(ctx, transport_name="tls" if tls else "tcp")
    session.output.attach(cast(Any, transport), write_chunk=write_limits(ctx.write_buffer_high, tls=tls).chunk)
    return session


def burst(session: StreamSession, count: int) -> bytes:
    """Deliver ``count`` distinct 600-byte reports in one loop iteration; the bytes they make."""
    envelopes = [envelope(Priority.POSITION, f"u{i}", raw_size=600, tag=i) for i in range(count)]
    for env in envelopes:
        session.offer(env)
    session.flush_pending()
    return b"".join(env.wire(session.connection.wire) for env in envelopes)


async def test_tls_burst_is_written_in_bounded_pieces_in_order() -> None:
    transport = FakeTransport()
    expected = burst(session_writing_to(transport, tls=True), 1000)
    assert len(expected) > 10 * TLS_WRITE_CHUNK
    assert all(len(chunk) <= TLS_WRITE_CHUNK for chunk in transport.chunks)
    assert bytes(transport.written) == expected


async def test_plain_burst_is_one_write() -> None:
    transport = FakeTransport()
    expected = burst(session_writing_to(transport, tls=False), 1000)
    assert transport.chunks == [expected]


def test_tls_water_marks_are_capped_and_a_smaller_setting_is_kept() -> None:
    assert write_limits(1024 * 1024, tls=False) == (1024 * 1024, 256 * 1024, 0)
    assert write_limits(1024 * 1024, tls=True) == (TLS_WRITE_BUFFER_HIGH, TLS_WRITE_BUFFER_HIGH // 4, TLS_WRITE_CHUNK)
    assert write_limits(16 * 1024, tls=True).high == 16 * 1024
