"""Server-made notices (mission changes, invitations) kept for addressees that are offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.routing.envelope import SERVER_ORIGIN_ID, Envelope, Origin
from tests.support.picture import Receiver
from tests.unit.services.test_mailbox import World, event

RED = frozenset({"Red"})
BLUE = frozenset({"Blue"})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def world(tmp_path: Path, clock: ManualClock) -> World:
    return World(tmp_path / "mailbox.db", clock, ttl_s=3600)


def _notice(clock: ManualClock, uid: str = "change-1") -> Envelope:
    # Mission notices live 20 s on the wire.
    ev = event(uid, "t-x-m-c", now=clock.now_ms(), stale_s=20)
    return Envelope(ev, Origin(session_id=SERVER_ORIGIN_ID, groups=RED), clock.now_ms())


def _known(world: World, sub: Receiver, uid: str, callsign: str) -> None:
    world.connect(sub, uid=uid, callsign=callsign)
    world.leave(sub)


async def test_offline_principal_and_uid_addressees_get_the_notice_once(world: World, clock: ManualClock) -> None:
    _known(world, Receiver("s-p", RED, RED, principal="red2"), "R2", "RED2")
    _known(world, Receiver("s-u", RED, RED), "U3", "ANON3")
    kept = world.mailbox.keep_notice(_notice(clock), principals=["red2"], uids=["U3"])
    assert kept == 2
    clock.advance(60)  # past the notice's own stale time, well within the TTL
    back = Receiver("s-p2", RED, RED, principal="red2")
    world.connect(back)
    assert back.uids() == ["change-1"]
    assert back.received[0].event.stale > clock.now_ms()
    anon = Receiver("s-u2", RED, RED)
    world.connect(anon, uid="U3", callsign="ANON3")
    assert anon.uids() == ["change-1"]
    world.leave(back)
    again = Receiver("s-p3", RED, RED, principal="red2")
    world.connect(again)
    assert again.uids() == []


async def test_notice_is_not_kept_for_who_cannot_see_the_mission(world: World, clock: ManualClock) -> None:
    _known(world, Receiver("s-b", BLUE, BLUE, principal="blue1"), "B1", "BLUE1")
    assert world.mailbox.keep_notice(_notice(clock), principals=["blue1"], uids=["B1"], groups=["Blue"]) == 0
    assert world.mailbox.keep_notice(_notice(clock), principals=["stranger"], uids=["nobody"]) == 0


async def test_connected_addressee_not_reached_gets_it_now_and_reached_one_not_twice(
    world: World, clock: ManualClock
) -> None:
    _known(world, Receiver("s-r2", RED, RED, principal="red2"), "R2", "RED2")
    _known(world, Receiver("s-r3", RED, RED, principal="red3"), "R3", "RED3")
    unbound = Receiver("s-r2b", RED, RED, principal="red2")
    world.connect(unbound)  # no SA yet: the mission service could not find it by uid
    reached = Receiver("s-r3b", RED, RED, principal="red3")
    world.connect(reached, uid="R3", callsign="RED3")
    kept = world.mailbox.keep_notice(_notice(clock), reached=[reached.id], principals=["red2", "red3"])
    assert kept == 0
    assert unbound.uids() == ["change-1"]
    assert reached.uids() == []  # it got the live copy from the mission service


async def test_group_invitation_is_kept_for_offline_principal_readers(world: World, clock: ManualClock) -> None:
    _known(world, Receiver("s-r2", RED, RED, principal="red2"), "R2", "RED2")
    _known(world, Receiver("s-anon", RED, RED), "A9", "ANON9")
    assert world.mailbox.keep_notice(_notice(clock, "invite-1"), groups=["Red"]) == 1
    back = Receiver("s-r2b", RED, RED, principal="red2")
    world.connect(back)
    assert back.uids() == ["invite-1"]
