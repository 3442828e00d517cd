"""The NATS bus's outgoing queues before any network: own handlers at once, overflow policies counted."""

from __future__ import annotations

from rallypoint.bus.nats import NatsBus
from rallypoint.clock import ManualClock
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from tests.support.picture import event, marker

CLOCK = ManualClock()
NOWHERE = "nats://127.0.0.1:1"


def _envelope(uid: str, cot_type: str = "a-f-G-U-C") -> Envelope:
    return Envelope(event(CLOCK, uid, cot_type), Origin(session_id="s", node="node-a"), 0)


async def test_own_handlers_get_the_envelope_before_anything_is_sent() -> None:
    bus = NatsBus(NOWHERE, "node-a")
    seen: list[tuple[Envelope, Audience]] = []
    bus.subscribe(lambda e, a: seen.append((e, a)))
    envelope, audience = _envelope("p-1"), Audience(groups=frozenset({"Cyan"}))
    bus.publish(envelope, audience)
    assert seen == [(envelope, audience)] and seen[0][0] is envelope
    assert bus.statistics().pending == 1 and bus.statistics().published == 1


async def test_positions_over_the_bound_drop_the_oldest_and_are_counted() -> None:
    bus = NatsBus(NOWHERE, "node-a", max_positions=3)
    for i in range(5):
        bus.publish(_envelope(f"p-{i}"), Audience())
    stats = bus.statistics()
    assert stats.pending == 3 and stats.dropped == {"position_overflow": 2}


async def test_acknowledged_classes_over_the_bound_drop_the_oldest_and_are_counted() -> None:
    bus = NatsBus(NOWHERE, "node-a", max_jetstream=3)
    for i in range(5):
        bus.publish(Envelope(marker(CLOCK, f"m-{i}"), Origin(session_id="s", node="node-a"), 0), Audience())
    stats = bus.statistics()
    assert stats.pending == 3 and stats.dropped == {"jetstream_overflow": 2}


async def test_what_is_unsent_at_close_is_counted() -> None:
    bus = NatsBus(NOWHERE, "node-a")
    bus.publish(_envelope("p-1"), Audience())
    bus.publish(Envelope(marker(CLOCK, "m-1"), Origin(session_id="s", node="node-a"), 0), Audience())
    await bus.close()
    bus.publish(_envelope("p-2"), Audience())
    assert bus.statistics().dropped == {"closed": 3} and bus.statistics().pending == 0


async def test_an_envelope_without_a_node_is_stamped_and_one_of_another_node_refused() -> None:
    bus = NatsBus(NOWHERE, "node-a")
    mine = Envelope(marker(CLOCK, "m-1"), Origin(session_id="server"), 0)
    bus.publish(mine, Audience())
    bus.publish(Envelope(marker(CLOCK, "m-2"), Origin(session_id="s", node="node-b"), 0), Audience())
    assert mine.origin.node == "node-a"
    assert bus.statistics().foreign_refused == 1 and bus.statistics().pending == 1
