"""A priority message the receiver drops (a loop, the hop limit) is still acknowledged.

In a triangle, bravo may get alpha's chat through charlie before alpha's own copy, accept it and
queue it for alpha too (it came from charlie). alpha drops it (its own flow tag), but unless it
acknowledges it, bravo keeps it queued and sends it again after every reconnect. Two real
``PeerLink``s are wired back to back (bravo's link to alpha, alpha's link to bravo).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.model.cot import Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope, Origin
from tests.unit.federation.test_link_budget import LIMITS, PEER, _envelope, _persisted
from tests.unit.federation.test_replay import ALPHA, Side, _deliver, _drain, _side, _stop


def _chat_via_charlie(clock: ManualClock, text: str) -> Envelope:
    """alpha's chat as bravo accepted it from charlie: it carries alpha's and charlie's flow tags."""
    now = clock.now_ms()
    detail = (f'<remarks>{text}</remarks><_flow-tags_ alpha="2026-12-07T00:00:00.000Z" '
              'charlie="2026-12-07T00:00:00.010Z"/>').encode()
    event = make_event(uid=f"GeoChat.{text}", type="b-t-f", how="h-g-i-g-o", time=now, start=now,
                       stale=now + 600_000, point=Point(lat=0.0, lon=0.0), detail_xml=detail, limits=LIMITS)
    return Envelope(event, Origin(session_id="fed:charlie"), now)


@pytest.fixture
async def sides(tmp_path: Path) -> AsyncIterator[tuple[Side, Side, ManualClock]]:
    clock = ManualClock()
    bravo = await _side(tmp_path / "bravo", clock, node="bravo", peer=ALPHA, seen={})
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    yield bravo, alpha, clock
    await _stop(bravo)
    await _stop(alpha)


async def test_a_message_dropped_as_a_loop_or_past_the_hop_limit_is_acknowledged(
    sides: tuple[Side, Side, ManualClock],
) -> None:
    bravo, alpha, clock = sides
    bravo.link.offer(_chat_via_charlie(clock, "back-home"))
    bravo.link.offer(_chat_via_charlie(clock, "too-far"))
    await _persisted(bravo.link, 2)
    bravo.link.attach()
    alpha.link.attach()
    sent = _drain(bravo.link)
    assert len(sent) == 2
    sent[1].federateHops.currentHops = sent[1].federateHops.maxHops + 1
    await _deliver(sent, alpha.link)
    assert alpha.accepted == []  # neither enters alpha's picture ...
    assert alpha.link.snapshot()["dropped"] == 1  # (the hop limit counts as a drop, a loop does not)
    await _deliver(_drain(alpha.link), bravo.link)
    # ... and bravo's queue is empty: nothing to send again after a reconnect.
    assert bravo.link.unacked == 0
    bravo.link.attach()
    assert _drain(bravo.link) == []


async def test_our_own_message_coming_back_is_dropped_unrecorded_and_unanswered(
    sides: tuple[Side, Side, ManualClock],
) -> None:
    _, alpha, clock = sides
    alpha.link.offer(_envelope(clock, "GeoChat.first-out", "b-t-f", text="first-out"))
    await _persisted(alpha.link, 1)
    alpha.link.attach()
    [ours] = _drain(alpha.link)
    # As a TAK Server would return it: our detail (flow tag, sequence mark) untouched, new provenance.
    del ours.federateProvenance[:]
    await alpha.link.receive(ours)
    assert alpha.accepted == []
    assert not any(origin.startswith("alpha") for origin, _ in alpha.link._seen)
    assert _drain(alpha.link) == []  # no acknowledgement of our own number goes to the peer
