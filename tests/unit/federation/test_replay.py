"""What a link replays after a partition: urgent lane first, exactly once, and no resurrected deletes.

Two real ``PeerLink``s (alpha's link to bravo and bravo's link to alpha, each with its own SQLite
store) are wired back to back: messages alpha would send are handed to bravo's ``receive``, and
bravo's acknowledgements to alpha's. A "connection" is one ``attach``; losing it drops whatever was
in flight.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.config import FederationPeer
from rallypoint.federation.convert import acknowledgement, from_federated
from rallypoint.federation.link import PeerLink
from rallypoint.model.cot import Point
from rallypoint.protocol.fig import fig_pb2
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.storage.sqlite.federation import SqliteFederationStore
from tests.unit.federation.test_link_budget import LIMITS, PEER, _envelope, _persisted

ALPHA = FederationPeer(name="alpha", groups_out={"__ANON__": "__ANON__"}, groups_in={"__ANON__": "__ANON__"})


def _delete(clock: ManualClock, uid: str) -> Envelope:
    """A ``t-x-d-d`` removing ``uid``, as ATAK sends it."""
    now = clock.now_ms()
    event = make_event(uid=f"del-{uid}", type="t-x-d-d", how="h-g-i-g-o", time=now, start=now, stale=now + 600_000,
                       point=Point(lat=0.0, lon=0.0), detail_xml=f'<link uid="{uid}" relation="p-p"/>'.encode(),
                       limits=LIMITS)
    return Envelope(event, Origin(session_id="client-1"), now)


def _uid(msg: fig_pb2.FederatedEvent) -> str:
    return from_federated(msg, LIMITS).event.uid


@dataclass
class Side:
    link: PeerLink
    store: SqliteFederationStore
    persister: asyncio.Task[None]
    accepted: list[str] = field(default_factory=list)


async def _side(
    tmp: Path, clock: ManualClock, *, node: str, peer: FederationPeer, seen: dict[tuple[str, str], int]
) -> Side:
    tmp.mkdir(exist_ok=True)
    store = SqliteFederationStore(tmp / "federation.db")
    accepted: list[str] = []
    link = PeerLink(peer, node_id=node, store=store, seen=seen, accept=lambda e: accepted.append(e.event.uid),
                    clock=clock, limits=LIMITS, max_hops=3, queue_max=1000)
    await link.load()
    return Side(link, store, asyncio.create_task(link.run_persister()), accepted)


async def _stop(side: Side) -> None:
    side.link.close()
    await side.persister
    await side.store.close()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Side, Side, ManualClock]]:
    clock = ManualClock()
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    bravo = await _side(tmp_path / "bravo", clock, node="bravo", peer=ALPHA, seen={})
    yield alpha, bravo, clock
    await _stop(alpha)
    await _stop(bravo)


def _drain(link: PeerLink) -> list[fig_pb2.FederatedEvent]:
    out: list[fig_pb2.FederatedEvent] = []
    while (msg := link.next_message()[0]) is not None:
        out.append(msg)
    return out


async def test_emergency_and_delete_go_before_the_chat_backlog_after_a_partition(
    pair: tuple[Side, Side, ManualClock],
) -> None:
    alpha, _, clock = pair
    for i in range(20):
        alpha.link.offer(_envelope(clock, f"chat-{i}", "b-t-f", text=f"chat-{i}"))
    alpha.link.offer(_envelope(clock, "alert", "b-a-o-tbl"))
    alpha.link.offer(_delete(clock, "gone"))
    await _persisted(alpha.link, 22)
    alpha.link.attach()
    sent = [_uid(m) for m in _drain(alpha.link)]
    assert sent == ["alert", "del-gone", *(f"chat-{i}" for i in range(20))]


async def test_a_delete_removes_the_latest_position_it_would_otherwise_be_followed_by(
    pair: tuple[Side, Side, ManualClock],
) -> None:
    alpha, _, clock = pair
    alpha.link.offer(_envelope(clock, "x", "a-f-G-U-C"))
    alpha.link.offer(_envelope(clock, "y", "a-f-G-U-C"))
    alpha.link.offer(_delete(clock, "x"))
    await _persisted(alpha.link, 1)
    alpha.link.attach()
    assert [_uid(m) for m in _drain(alpha.link)] == ["del-x", "y"]
    # Reported again after the delete: a new contact, sent after the delete.
    alpha.link.offer(_envelope(clock, "x", "a-f-G-U-C"))
    alpha.link.attach()
    assert [_uid(m) for m in _drain(alpha.link)] == ["del-x", "y", "x"]


async def test_a_delete_cancels_a_queued_marker_of_that_uid_even_after_a_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        alpha.link.offer(_envelope(clock, "marker-1", "b-m-p-s-m"))
        alpha.link.offer(_envelope(clock, "chat-1", "b-t-f"))
        await _persisted(alpha.link, 2)
        alpha.link.offer(_delete(clock, "marker-1"))
        await _persisted(alpha.link, 2)
        assert alpha.link.unacked == 2  # the chat and the delete
    finally:
        # Closing lets the persister finish writing (the cancellation included); then restart from disk.
        await _stop(alpha)
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        alpha.link.attach()
        assert [_uid(m) for m in _drain(alpha.link)] == ["del-marker-1", "chat-1"]
    finally:
        await _stop(alpha)


async def _deliver(msgs: list[fig_pb2.FederatedEvent], to: PeerLink) -> None:
    for msg in msgs:
        await to.receive(msg)


@pytest.mark.parametrize("seed", range(8))
async def test_replay_is_exactly_once_per_lane_in_order_across_lost_connections(
    pair: tuple[Side, Side, ManualClock], seed: int
) -> None:
    alpha, bravo, clock = pair
    rng = random.Random(seed)
    offered: list[str] = []
    for i in range(60):
        cot_type = "b-a-o-tbl" if rng.random() < 0.25 else "b-t-f"
        uid = f"{'alert' if cot_type != 'b-t-f' else 'chat'}-{i}"
        alpha.link.offer(_envelope(clock, uid, cot_type))
        offered.append(uid)
    await _persisted(alpha.link, 60)
    first_sent: list[str] = []
    for _connection in range(6):
        alpha.link.attach()
        bravo.link.attach()
        sent = _drain(alpha.link)
        if not first_sent:
            first_sent = [_uid(m) for m in sent]
        # The connection dies after a random prefix reached bravo; acks may or may not make it back.
        await _deliver(sent[: rng.randint(0, len(sent))], bravo.link)
        acks = _drain(bravo.link)
        assert all(acknowledgement(a) is not None for a in acks)
        await _deliver(acks[: rng.randint(0, len(acks))], alpha.link)
    alpha.link.attach()
    await _deliver(_drain(alpha.link), bravo.link)
    await _deliver(_drain(bravo.link), alpha.link)
    alerts = [u for u in offered if u.startswith("alert")]
    chats = [u for u in offered if u.startswith("chat")]
    # Urgent first on the first connection; nothing lost, nothing twice, each lane in order.
    assert first_sent == alerts + chats
    assert sorted(bravo.accepted) == sorted(offered)
    assert [u for u in bravo.accepted if u.startswith("alert")] == alerts
    assert [u for u in bravo.accepted if u.startswith("chat")] == chats
    # Every acknowledgement reached alpha at the end: nothing is left to replay.
    assert alpha.link.unacked == 0
    alpha.link.attach()
    assert _drain(alpha.link) == []
