"""A federation link under a byte budget: positions thinned, priority deferred never skipped, bound kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from rallypoint.clock import ManualClock
from rallypoint.config import FederationPeer
from rallypoint.federation.convert import ack_of, from_federated
from rallypoint.federation.link import PeerLink
from rallypoint.model.cot import Point
from rallypoint.protocol.fig import fig_pb2
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.storage.sqlite.federation import SqliteFederationStore

LIMITS = Limits(max_event_bytes=1024)
RATE = 1000.0
PEER = FederationPeer(name="bravo", groups_out={"__ANON__": "__ANON__"}, groups_in={"__ANON__": "__ANON__"})


def _envelope(clock: ManualClock, uid: str, cot_type: str, *, lat: float = 1.0, text: str = "") -> Envelope:
    now = clock.now_ms()
    detail = f'<contact callsign="{uid}"/><remarks>{text}</remarks>'.encode()
    event = make_event(uid=uid, type=cot_type, how="h-g-i-g-o", time=now, start=now, stale=now + 600_000,
                       point=Point(lat=lat, lon=2.0), detail_xml=detail, limits=LIMITS)
    return Envelope(event, Origin(session_id="client-1"), now)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteFederationStore]:
    s = SqliteFederationStore(tmp_path / "federation.db")
    yield s
    await s.close()


async def _link(store: SqliteFederationStore, clock: ManualClock, rate: float) -> PeerLink:
    link = PeerLink(PEER, node_id="alpha", store=store, seen={}, accept=lambda e: None, clock=clock,
                    limits=LIMITS, max_hops=3, queue_max=1000, budget_bytes_per_s=rate)
    await link.load()
    link.attach()
    return link


async def _persisted(link: PeerLink, count: int) -> None:
    """Wait (with a deadline) until the persister has made ``count`` priority messages sendable."""
    for _ in range(1000):
        if link.unacked >= count and not any(lane.unpersisted or lane.writing for lane in link._lanes):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} priority messages not persisted within 10 s")


async def test_positions_thinned_chats_all_sent_and_bytes_within_budget(store: SqliteFederationStore) -> None:
    clock = ManualClock()
    link = await _link(store, clock, RATE)
    persister = asyncio.create_task(link.run_persister())
    try:
        burst = int(link.snapshot()["budget_burst_bytes"])  # type: ignore[call-overload]
        assert burst >= LIMITS.max_event_bytes
        for i in range(30):
            link.offer(_envelope(clock, f"chat-{i}", "b-t-f", text=f"chat-{i}"))
        await _persisted(link, 30)
        sent: list[fig_pb2.FederatedEvent] = []
        spent, start, saw_thinning = 0, clock.monotonic(), False
        for step in range(400):
            # Positions of one uid at 20 Hz: far more than 1000 B/s can carry next to the chats.
            if step < 300:
                link.offer(_envelope(clock, "pos-1", "a-f-G-U-C", lat=step / 10))
            while True:
                msg, _ = link.next_message()
                if msg is None:
                    break
                sent.append(msg)
                spent += msg.ByteSize()
                assert spent <= burst + RATE * (clock.monotonic() - start)
            saw_thinning |= link.thinning
            clock.advance(0.05)
        chats = [from_federated(m, LIMITS).event.uid for m in sent if m.event.type == "b-t-f"]
        assert chats == [f"chat-{i}" for i in range(30)]
        positions = [from_federated(m, LIMITS).event.point.lat for m in sent if m.event.type == "a-f-G-U-C"]
        assert saw_thinning
        assert 0 < len(positions) < 300
        assert link.snapshot()["positions_thinned"] != 0
        # The latest report was held, not lost: the picture converges.
        assert positions[-1] == 29.9
        assert positions == sorted(positions)
    finally:
        link.close()
        await persister


async def test_deferred_priority_waits_for_budget_and_reports_when(store: SqliteFederationStore) -> None:
    clock = ManualClock()
    link = await _link(store, clock, RATE)
    persister = asyncio.create_task(link.run_persister())
    try:
        for i in range(60):
            link.offer(_envelope(clock, f"chat-{i}", "b-t-f", text="x" * 200))
        await _persisted(link, 60)
        first: list[fig_pb2.FederatedEvent] = []
        while (got := link.next_message())[0] is not None:
            first.append(got[0])
        assert 0 < len(first) < 60, "the burst should hold only part of the backlog"
        retry = got[1]
        assert retry is not None and retry > 0
        clock.advance(retry)
        msg, _ = link.next_message()
        assert msg is not None and msg.event.type == "b-t-f"
    finally:
        link.close()
        await persister


async def test_acknowledgements_are_paid_from_the_budget_too(store: SqliteFederationStore) -> None:
    clock = ManualClock()
    link = await _link(store, clock, RATE)
    burst = int(link.snapshot()["budget_burst_bytes"])  # type: ignore[call-overload]
    # Drain the bucket with positions of many uids, then an ack must wait for a refill.
    for i in range(200):
        link.offer(_envelope(clock, f"pos-{i}", "a-f-G-U-C", text="y" * 100))
    spent = 0
    while (got := link.next_message())[0] is not None:
        spent += got[0].ByteSize()
    assert spent <= burst
    link._queue_ack(5)
    msg, _ = link.next_message()
    while msg is None or ack_of(msg) is None:
        clock.advance(0.1)
        msg, _ = link.next_message()
        if msg is not None:
            spent += msg.ByteSize()
        assert spent <= burst + RATE * clock.monotonic()
    assert ack_of(msg) == 5


async def test_without_budget_nothing_is_thinned(store: SqliteFederationStore) -> None:
    clock = ManualClock()
    link = await _link(store, clock, 0.0)
    for step in range(50):
        link.offer(_envelope(clock, "pos-1", "a-f-G-U-C", lat=step / 10))
        msg, retry = link.next_message()
        assert msg is not None and retry is None
    snap = link.snapshot()
    assert snap["thinning"] is False and snap["budget_bytes_per_s"] == 0.0


@pytest.mark.parametrize("rate", [0.0, RATE])
async def test_priority_message_that_expired_in_the_queue_is_never_sent(
    store: SqliteFederationStore, rate: float
) -> None:
    clock = ManualClock()
    link = await _link(store, clock, rate)
    persister = asyncio.create_task(link.run_persister())
    try:
        short = _envelope(clock, "short", "b-t-f")
        short.event = msgspec.structs.replace(short.event, stale=clock.now_ms() + 3_000)
        link.offer(short)
        link.offer(_envelope(clock, "long", "b-t-f"))
        await _persisted(link, 2)
        clock.advance(5)
        msg, _ = link.next_message()
        assert msg is not None and from_federated(msg, LIMITS).event.uid == "long"
        assert link.next_message()[0] is None
    finally:
        link.close()
        await persister


def test_a_peer_budget_overrides_the_node_wide_one() -> None:
    from rallypoint.config import Settings, load_settings
    from rallypoint.errors import ConfigError
    from rallypoint.federation.service import link_budget

    node = Settings(federation_budget_bytes_per_s=5000.0)
    assert link_budget(PEER, node) == 5000.0
    assert link_budget(msgspec.structs.replace(PEER, budget_bytes_per_s=300.0), node) == 300.0
    assert link_budget(msgspec.structs.replace(PEER, budget_bytes_per_s=0.0), node) == 0.0
    peers = '[{"name": "sat", "budget_bytes_per_s": -1}]'
    with pytest.raises(ConfigError, match="budget_bytes_per_s"):
        load_settings(environ={"RALLYPOINT_FEDERATION_PEERS": peers})
    loaded = load_settings(environ={"RALLYPOINT_FEDERATION_PEERS": '[{"name": "sat", "budget_bytes_per_s": 250}]'})
    assert loaded.federation_peers[0].budget_bytes_per_s == 250.0
