"""A stream session with a link budget: bytes stay within it and urgent traffic overtakes positions."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from rallypoint.clock import ManualClock
from rallypoint.model.cot_type import Priority
from rallypoint.protocol.limits import Limits
from rallypoint.services.metrics import ServerMetrics
from rallypoint.transport.context import TransportContext
from rallypoint.transport.session import StreamSession
from tests.unit.delivery.support import envelope

RATE = 100_000.0


class FakeTransport:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def is_closing(self) -> bool:
        return False

    @property
    def written(self) -> bytes:
        return b"".join(self.chunks)


def make_session(clock: ManualClock) -> tuple[StreamSession, FakeTransport]:
    ctx = TransportContext(
        ingest=cast(Any, None),
        hub=cast(Any, None),
        metrics=ServerMetrics(),
        clock=clock,
        limits=Limits(),
        principal_of=lambda der: None,
        access_of=lambda principal: (frozenset(), frozenset()),
        session_budget_bytes_per_s=RATE,
    )
    session = StreamSession(ctx, transport_name="tcp")
    session.apply_budget()
    transport = FakeTransport()
    session._transport = cast(Any, transport)
    return session, transport


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_budget_bounds_bytes_and_emergency_overtakes_queued_positions() -> None:
    clock = ManualClock()
    session, transport = make_session(clock)
    burst = max(Limits().max_event_bytes, int(RATE * 2))
    for i in range(2000):
        session.offer(envelope(Priority.POSITION, f"u{i % 50}", tag=i))
    session.flush_pending()
    sent_before = len(transport.written)
    # The clock has not moved: nothing beyond the burst may have gone out.
    assert 0 < sent_before <= burst
    emergency = envelope(Priority.EMERGENCY, "sos", tag=99_999)
    session.offer(emergency)
    assert b'uid="sos"' not in transport.written  # deferred behind the exhausted budget, not skipped
    clock.advance(1.0)
    await wait_for(lambda: b'uid="sos"' in transport.written)
    after = transport.written[sent_before:]
    # The emergency is the first thing written once the budget allows, ahead of queued positions.
    assert after.index(b'uid="sos"') < after.index(b"</event>")
    assert len(transport.written) <= burst + RATE * 1.0
    session.connection_lost(None)
