"""A stream session with a link budget: bytes stay within it and urgent traffic overtakes positions."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from rallypoint.clock import ManualClock
from rallypoint.model.cot_type import Priority
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.wire import WireFormat
from rallypoint.services.metrics import ServerMetrics
from rallypoint.transport.context import TransportContext
from rallypoint.transport.session import StreamSession
from rallypoint.transport.session_pacing import Pacing
from tests.unit.delivery.support import envelope
from tests.unit.delivery.test_outbox import delete_of

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


def make_session(
    clock: ManualClock, *, rate: float = RATE, limits: Limits | None = None
) -> tuple[StreamSession, FakeTransport]:
    ctx = TransportContext(
        ingest=cast(Any, None),
        hub=cast(Any, None),
        metrics=ServerMetrics(),
        clock=clock,
        limits=limits or Limits(),
        principal_of=lambda der: None,
        access_of=lambda principal: (frozenset(), frozenset()),
        session_budget_bytes_per_s=rate,
    )
    session = StreamSession(ctx, transport_name="tcp")
    session.apply_budget()
    transport = FakeTransport()
    session.output.attach(cast(Any, transport))
    return session, transport


def pacing_of(session: StreamSession) -> Pacing:
    """The session's link budget (these sessions all have one)."""
    pacing = session.output.pacing
    assert pacing is not None
    return pacing


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
    assert session.statistics()["queued"] > 0  # positions wait for the budget
    emergency = envelope(Priority.EMERGENCY, "sos", tag=99_999)
    session.offer(emergency)
    # Positions left the reserve untouched: the emergency goes at once, ahead of queued positions.
    after = transport.written[sent_before:]
    assert after.index(b'uid="sos"') < after.index(b"</event>")
    clock.advance(1.0)
    await wait_for(lambda: session.statistics()["queued"] == 0)
    assert len(transport.written) <= burst + RATE * 1.0
    session.connection_lost(None)


def _fill_with_positions(session: StreamSession, count: int = 2000) -> None:
    """Offer distinct positions until the budget defers them: the outbox holds positions, a retry is set."""
    for i in range(count):
        session.offer(envelope(Priority.POSITION, f"u{i}", tag=i))
    session.flush_pending()  # what the end of the loop iteration does
    assert session.statistics()["queued"] > 0


async def test_urgent_traffic_does_not_wait_for_the_position_retry_timer() -> None:
    clock = ManualClock()
    session, transport = make_session(clock)
    _fill_with_positions(session)
    assert pacing_of(session).retry_scheduled  # positions wait for the budget to refill past the reserve
    before = len(transport.written)
    session.offer(envelope(Priority.MESSAGE, "chat-1", tag=1))
    session.offer(envelope(Priority.EMERGENCY, "sos-1", tag=2))
    # Both written in this very call chain: no timer, no clock movement.
    written = transport.written[before:]
    assert b'uid="chat-1"' in written and b'uid="sos-1"' in written
    assert written.count(b"</event>") == 2  # and no queued position went with them
    session.connection_lost(None)


async def test_a_deferred_aged_position_at_the_head_does_not_block_a_chat() -> None:
    clock = ManualClock()
    session, transport = make_session(clock)
    _fill_with_positions(session)
    clock.advance(11.0)  # the position head is overdue (POSITION max wait 10 s): it is served first
    policy = pacing_of(session).policy
    assert policy is not None
    budget = policy.budget
    now = clock.monotonic()
    # Leave less than the positions' reserve but plenty for a chat.
    assert budget.try_spend(int(budget.available(now)) - 10_000, now)
    queued = session.statistics()["queued"]
    before = len(transport.written)
    session.offer(envelope(Priority.MESSAGE, "chat-2", tag=3))
    written = transport.written[before:]
    assert b'uid="chat-2"' in written
    assert written.count(b"</event>") == 1  # the aged position still waits for its share
    assert session.statistics()["queued"] == queued
    session.connection_lost(None)


def _latest_times(written: bytes) -> dict[str, bytes]:
    """uid -> ``time`` attribute of the last event of that uid in ``written``."""
    out: dict[str, bytes] = {}
    for frame in written.split(b"</event>")[:-1]:
        uid = frame.split(b'uid="', 1)[1].split(b'"', 1)[0].decode()
        out[uid] = frame.split(b'time="', 1)[1].split(b'"', 1)[0]
    return out


async def test_a_thinned_uid_that_stops_reporting_still_gets_its_latest_position_sent() -> None:
    clock = ManualClock()
    rate = 2_000.0
    session, transport = make_session(clock, rate=rate, limits=Limits(max_event_bytes=8192))
    policy = pacing_of(session).policy
    assert policy is not None
    burst = policy.budget.burst_bytes
    uids = [f"p{n}" for n in range(10)]
    last_tag: dict[str, int] = {}
    tag = 0
    elapsed = 0.0
    # Ten uids report every half second: about 2.5 times what the link carries, so positions are thinned.
    for _ in range(20):
        for uid in uids:
            tag += 1_000
            last_tag[uid] = tag
            session.offer(envelope(Priority.POSITION, uid, tag=tag))
        session.flush_pending()
        clock.advance(0.5)
        elapsed += 0.5
        pacing_of(session).fire()  # what the retry timer does when it fires
        assert len(transport.written) <= burst + rate * elapsed
    assert policy.skipped > 0
    # Then they all stop. The held reports go once thinning lets each uid go again.
    for _ in range(240):
        clock.advance(0.5)
        elapsed += 0.5
        pacing_of(session).fire()
        assert len(transport.written) <= burst + rate * elapsed
    expected = {uid: envelope(Priority.POSITION, uid, tag=t).wire(WireFormat.XML) for uid, t in last_tag.items()}
    latest = _latest_times(transport.written)
    for uid, wire in expected.items():
        assert latest[uid] == wire.split(b'time="', 1)[1].split(b'"', 1)[0], uid
    assert session.statistics()["held"] == 0
    session.connection_lost(None)


async def test_a_delete_forgets_the_held_report_of_its_uid() -> None:
    clock = ManualClock()
    session, _transport = make_session(clock, rate=2_000.0, limits=Limits(max_event_bytes=8192))
    for step in range(40):
        for n in range(10):
            session.offer(envelope(Priority.POSITION, f"p{n}", tag=step * 100 + n))
        if session.statistics()["held"]:
            break
        clock.advance(0.5)
        pacing_of(session).fire()
    assert session.statistics()["held"] > 0
    pacing = pacing_of(session)
    gone = pacing.held_uids()[0]
    session.offer(delete_of(gone))
    assert gone not in pacing.held_uids()
    session.connection_lost(None)


PING = (
    b'<event version="2.0" uid="ping-1" type="t-x-c-t" how="h-g-i-g-o" time="2024-05-01T10:00:00Z" '
    b'start="2024-05-01T10:00:00Z" stale="2024-05-01T10:00:20Z"><point lat="0" lon="0" hae="0" ce="1" le="1"/>'
    b"<detail/></event>"
)


async def test_a_pong_waits_for_the_budget_and_is_charged() -> None:
    clock = ManualClock()
    session, transport = make_session(clock)
    policy = pacing_of(session).policy
    assert policy is not None
    now = clock.monotonic()
    assert policy.budget.try_spend(int(policy.budget.available(now)), now)  # the bucket is empty
    session.data_received(PING)
    assert b"t-x-c-t-r" not in transport.written  # owed, not written past the budget
    session.offer(envelope(Priority.MESSAGE, "after-pong", tag=1))
    assert transport.written == b""  # nothing overtakes an owed reply: the stream stays in order
    clock.advance(1.0)
    pacing_of(session).fire()
    written = transport.written
    assert written.index(b"t-x-c-t-r") < written.index(b'uid="after-pong"')
    assert policy.sent_bytes == len(written)  # the pong was charged like any other byte
    session.connection_lost(None)
