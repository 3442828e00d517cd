"""Stored mail counts as delivered only once a session wrote it: a quick disconnect loses nothing."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.routing.envelope import Envelope
from rallypoint.services.mailbox_inflight import MailEnvelope
from tests.support.picture import Receiver
from tests.unit.services.test_mailbox import World, event


@dataclass(eq=False)
class WritingSub(Receiver):
    """Like a stream session: offered envelopes wait until ``write`` hands them to the socket."""

    confirms_writes = True
    waiting: list[Envelope] = field(default_factory=list)
    wrote: list[str] = field(default_factory=list)

    def offer(self, envelope: Envelope) -> None:
        super().offer(envelope)
        self.waiting.append(envelope)

    def write(self, *uids: str) -> None:
        """Write the waiting envelopes named (all when none is named), in any order."""
        chosen = [e for e in self.waiting if not uids or e.event.uid in uids]
        for envelope in chosen:
            self.waiting.remove(envelope)
            self.wrote.append(envelope.event.uid)
            if isinstance(envelope, MailEnvelope):
                envelope.written()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def world(tmp_path: Path, clock: ManualClock) -> World:
    return World(tmp_path / "mailbox.db", clock)


def _three_for_bravo(world: World, clock: ManualClock) -> None:
    alpha, bravo = Receiver("s-a"), Receiver("s-b0")
    world.connect(alpha, uid="A", callsign="ALPHA")
    world.connect(bravo, uid="B", callsign="BRAVO")
    world.leave(bravo)
    for n in range(3):
        world.send(alpha, event(f"m{n}", dest='<dest uid="B"/>', now=clock.now_ms()))


async def test_mail_not_written_before_disconnect_is_offered_again(world: World, clock: ManualClock) -> None:
    _three_for_bravo(world, clock)
    quick = WritingSub("s-b1")
    world.connect(quick, uid="B", callsign="BRAVO")
    assert quick.uids() == ["m0", "m1", "m2"]
    assert world.mailbox.statistics()["delivered"] == 0  # offered, not written
    world.leave(quick)  # gone before its outbox was written
    assert world.mailbox.statistics()["returned"] == 3
    back = WritingSub("s-b2")
    world.connect(back, uid="B", callsign="BRAVO")
    assert back.uids() == ["m0", "m1", "m2"]
    back.write()
    assert world.mailbox.statistics()["delivered"] == 3
    world.leave(back)
    once_more = WritingSub("s-b3")
    world.connect(once_more, uid="B", callsign="BRAVO")
    assert once_more.uids() == []


async def test_written_mail_is_not_offered_again_even_after_restart(world: World, clock: ManualClock) -> None:
    _three_for_bravo(world, clock)
    first = WritingSub("s-b1")
    world.connect(first, uid="B", callsign="BRAVO")
    first.write("m0")
    world.leave(first)
    await world.restart()
    second = WritingSub("s-b2")
    world.connect(second, uid="B", callsign="BRAVO")
    assert second.uids() == ["m1", "m2"]


async def test_mail_written_out_of_order_is_delivered_once_across_restart(world: World, clock: ManualClock) -> None:
    _three_for_bravo(world, clock)
    first = WritingSub("s-b1")
    world.connect(first, uid="B", callsign="BRAVO")
    first.write("m1")  # m0 still waits (say, behind a paused socket) when the client goes
    world.leave(first)
    await world.restart()
    second = WritingSub("s-b2")
    world.connect(second, uid="B", callsign="BRAVO")
    assert second.uids() == ["m0", "m2"]
    second.write()
    world.leave(second)
    await world.mailbox.flush()
    with closing(sqlite3.connect(world.path)) as db:
        assert db.execute("SELECT count(*) FROM pending WHERE identity = 'uid:B'").fetchone() == (0,)
    await world.restart()
    third = WritingSub("s-b3")
    world.connect(third, uid="B", callsign="BRAVO")
    assert third.uids() == []


async def test_mail_returned_by_one_session_goes_to_another_of_the_same_identity(
    world: World, clock: ManualClock
) -> None:
    red = frozenset({"Red"})
    sender = Receiver("s-r1", red, red, principal="red1")
    world.connect(sender, uid="R1", callsign="RED1")
    world.connect(gone := Receiver("s-r2", red, red, principal="red2"), uid="R2", callsign="RED2")
    world.leave(gone)
    world.send(sender, event("for-red2", dest='<dest callsign="RED2"/>', now=clock.now_ms()))
    phone = WritingSub("s-phone", red, red, principal="red2")
    world.connect(phone)
    tablet = WritingSub("s-tablet", red, red, principal="red2")
    world.connect(tablet)
    assert (phone.uids(), tablet.uids()) == (["for-red2"], [])
    world.leave(phone)  # never wrote it
    assert tablet.uids() == ["for-red2"]
    tablet.write()
    assert world.mailbox.statistics()["delivered"] == 1


async def test_subscriber_without_write_reports_counts_the_hand_over(world: World, clock: ManualClock) -> None:
    _three_for_bravo(world, clock)
    plain = Receiver("s-b1")  # e.g. a subscriber that does not report writes
    world.connect(plain, uid="B", callsign="BRAVO")
    assert plain.uids() == ["m0", "m1", "m2"]
    assert not any(isinstance(e, MailEnvelope) for e in plain.received)
    world.leave(plain)
    again = WritingSub("s-b2")
    world.connect(again, uid="B", callsign="BRAVO")
    assert again.uids() == []
