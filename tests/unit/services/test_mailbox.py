"""Store-and-forward rules: what is kept, for whom, in which order, how often, for how long."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.delivery.dispatcher import resolve
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience, Router, to_sessions
from rallypoint.services.mailbox import Mailbox
from rallypoint.services.mailbox_registry import is_storable
from rallypoint.storage.sqlite.mailbox import SqliteMailboxStore
from tests.support.picture import ANON, Receiver


def event(uid: str, cot_type: str = "b-m-p-s-m", *, dest: str = "", now: int, stale_s: float = 3600,
          detail: str = "") -> CotEvent:
    return make_event(
        uid=uid, type=cot_type, how="h-g-i-g-o", time=now, start=now, stale=now + int(stale_s * 1000),
        point=Point(1.0, 2.0), detail_xml=(detail + (f"<marti>{dest}</marti>" if dest else "")).encode(),
    )


class World:
    """A directory, a router and a mailbox, driven the way the session hub and ingest drive them."""

    def __init__(self, path: Path, clock: ManualClock, **options: int | float) -> None:
        self.path = path
        self.clock = clock
        self.options = options
        self.directory = Directory()
        self.router = Router(self.directory)
        self.mailbox = self._open()

    def _open(self) -> Mailbox:
        return Mailbox(SqliteMailboxStore(self.path), directory=self.directory, clock=self.clock,
                       **self.options)  # type: ignore[arg-type]

    async def restart(self) -> None:
        """Close cleanly and open the same file again (the directory is empty after a restart)."""
        await self.mailbox.close()
        self.directory = Directory()
        self.router = Router(self.directory)
        self.mailbox = self._open()

    def connect(self, sub: Receiver, *, uid: str | None = None, callsign: str | None = None) -> None:
        self.directory.add(sub)
        for envelope in self.mailbox.on_join(sub):
            sub.offer(envelope)
        if uid is not None:
            self.directory.bind(sub.id, uid=uid, callsign=callsign)
            self.mailbox.on_bind(sub.id, uid, callsign)

    def leave(self, sub: Receiver) -> None:
        self.directory.remove(sub.id)
        self.mailbox.on_leave(sub)

    def send(self, sender: Receiver, ev: CotEvent) -> None:
        envelope = Envelope(ev, Origin(sender.id, groups=sender.write_groups, principal=sender.principal),
                            self.clock.now_ms())
        audience = self.router.route(envelope)
        self.mailbox.observe(envelope, audience)
        for target in resolve(self.directory, envelope, audience):
            target.offer(envelope)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def world(tmp_path: Path, clock: ManualClock) -> World:
    return World(tmp_path / "mailbox.db", clock)


def _register(world: World, sub: Receiver, uid: str, callsign: str) -> None:
    world.connect(sub, uid=uid, callsign=callsign)
    world.leave(sub)


async def test_offline_recipient_gets_messages_in_order_after_binding(world: World, clock: ManualClock) -> None:
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    for n in range(3):
        world.send(alpha, event(f"m{n}", dest='<dest callsign="BRAVO"/>', now=clock.now_ms()))
    world.send(alpha, event("m3", dest='<dest uid="B"/>', now=clock.now_ms()))
    again = Receiver("s-b2")
    world.connect(again)
    assert again.received == []  # anonymous: unknown until its self-SA binds
    world.mailbox.on_bind(again.id, None, None)
    assert again.received == []
    world.directory.bind(again.id, uid="B", callsign="BRAVO")
    world.mailbox.on_bind(again.id, "B", "BRAVO")
    assert again.uids() == ["m0", "m1", "m2", "m3"]
    assert world.mailbox.statistics()["delivered"] == 4


async def test_delivered_once_per_identity_even_across_restart(world: World, clock: ManualClock) -> None:
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    world.send(alpha, event("m0", dest='<dest callsign="BRAVO"/>', now=clock.now_ms()))
    first = Receiver("s-b2")
    world.connect(first, uid="B", callsign="BRAVO")
    assert first.uids() == ["m0"]
    world.leave(first)
    second = Receiver("s-b3")
    world.connect(second, uid="B", callsign="BRAVO")
    assert second.uids() == []
    world.leave(second)
    await world.restart()
    third = Receiver("s-b4")
    world.connect(third, uid="B", callsign="BRAVO")
    assert third.uids() == []


async def test_kept_messages_and_registry_survive_restart(world: World, clock: ManualClock) -> None:
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    world.send(alpha, event("before", dest='<dest callsign="BRAVO"/>', now=clock.now_ms()))
    await world.restart()
    # The registry came back: an address is still resolved while its owner is offline.
    alpha = Receiver("s-a2")
    world.connect(alpha, uid="A", callsign="ALPHA")
    world.send(alpha, event("after", dest='<dest callsign="BRAVO"/>', now=clock.now_ms()))
    back = Receiver("s-b2")
    world.connect(back, uid="B", callsign="BRAVO")
    assert back.uids() == ["before", "after"]
    assert (back.received[0].event.type, back.received[0].origin.groups) == ("b-m-p-s-m", ANON)


async def test_messages_expire_by_ttl_and_by_stale(tmp_path: Path, clock: ManualClock) -> None:
    world = World(tmp_path / "m.db", clock, ttl_s=60)
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    world.send(alpha, event("short-stale", dest='<dest uid="B"/>', now=clock.now_ms(), stale_s=10))
    world.send(alpha, event("long-stale", dest='<dest uid="B"/>', now=clock.now_ms(), stale_s=3600))
    clock.advance(30)
    world.send(alpha, event("fresh", dest='<dest uid="B"/>', now=clock.now_ms(), stale_s=3600))
    clock.advance(31)  # 61 s after the first two: past the TTL; 31 s after "fresh"
    back = Receiver("s-b2")
    world.connect(back, uid="B", callsign="BRAVO")
    assert back.uids() == ["fresh"]
    assert world.mailbox.statistics()["expired"] == 2


async def test_already_stale_event_is_not_kept(world: World, clock: ManualClock) -> None:
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    world.send(alpha, event("dead", dest='<dest uid="B"/>', now=clock.now_ms() - 10_000, stale_s=5))
    assert world.mailbox.statistics()["queued"] == 0
    assert world.mailbox.statistics()["expired"] == 1


async def test_unreachable_recipient_gets_nothing(world: World, clock: ManualClock) -> None:
    red = frozenset({"Red"})
    blue = frozenset({"Blue"})
    sender = Receiver("s-r", red, red, principal="red1")
    world.connect(sender, uid="R1", callsign="RED1")
    _register(world, Receiver("s-b", blue, blue, principal="blue1"), "B1", "BLUE1")
    _register(world, Receiver("s-r2", red, red, principal="red2"), "R2", "RED2")
    world.send(sender, event("to-blue", dest='<dest callsign="BLUE1"/>', now=clock.now_ms()))
    world.send(sender, event("to-blue-group", dest='<dest group="Blue"/>', now=clock.now_ms()))
    world.send(sender, event("to-red-group", dest='<dest group="Red"/>', now=clock.now_ms()))
    blue_back = Receiver("s-b2", blue, blue, principal="blue1")
    world.connect(blue_back)
    red_back = Receiver("s-r3", red, red, principal="red2")
    world.connect(red_back)
    assert blue_back.uids() == []
    assert red_back.uids() == ["to-red-group"]  # at connect: certificate clients need no SA first


async def test_lost_group_membership_blocks_delivery(world: World, clock: ManualClock) -> None:
    red = frozenset({"Red"})
    sender = Receiver("s-r", red, red, principal="red1")
    world.connect(sender, uid="R1", callsign="RED1")
    _register(world, Receiver("s-r2", red, red, principal="red2"), "R2", "RED2")
    world.send(sender, event("secret", dest='<dest callsign="RED2"/>', now=clock.now_ms()))
    moved = Receiver("s-r3", frozenset({"Blue"}), frozenset({"Blue"}), principal="red2")
    world.connect(moved)
    assert moved.uids() == []
    assert world.mailbox.statistics()["unreachable"] == 1


async def test_group_address_skips_connected_readers_and_the_sender(world: World, clock: ManualClock) -> None:
    red = frozenset({"Red"})
    sender = Receiver("s-r1", red, red, principal="red1")
    online = Receiver("s-r2", red, red, principal="red2")
    world.connect(sender, uid="R1", callsign="RED1")
    world.connect(online, uid="R2", callsign="RED2")
    _register(world, Receiver("s-r3", red, red, principal="red3"), "R3", "RED3")
    world.send(sender, event("to-red", dest='<dest group="Red"/>', now=clock.now_ms()))
    assert online.uids() == ["to-red"]  # live, by routing
    world.leave(online)
    world.leave(sender)
    for principal in ("red1", "red2", "red3"):
        sub = Receiver(f"again-{principal}", red, red, principal=principal)
        world.connect(sub)
        assert sub.uids() == (["to-red"] if principal == "red3" else []), principal


async def test_connected_but_unbound_principal_gets_it_live(world: World, clock: ManualClock) -> None:
    red = frozenset({"Red"})
    sender = Receiver("s-r1", red, red, principal="red1")
    world.connect(sender, uid="R1", callsign="RED1")
    _register(world, Receiver("s-r2", red, red, principal="red2"), "R2", "RED2")
    back = Receiver("s-r3", red, red, principal="red2")
    world.connect(back)  # no SA yet: routing cannot find RED2
    world.send(sender, event("now", dest='<dest callsign="RED2"/>', now=clock.now_ms()))
    assert back.uids() == ["now"]
    world.directory.bind(back.id, uid="R2", callsign="RED2")
    world.mailbox.on_bind(back.id, "R2", "RED2")
    assert back.uids() == ["now"]
    assert world.mailbox.statistics()["queued"] == 0


async def test_positions_pings_and_broadcasts_are_not_kept(world: World, clock: ManualClock) -> None:
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    now = clock.now_ms()
    world.send(alpha, event("pos", "a-f-G-U-C", dest='<dest uid="B"/>', now=now))
    world.send(alpha, event("ping", "t-x-c-t", dest='<dest uid="B"/>', now=now))
    world.send(alpha, event("broadcast-marker", now=now))
    world.send(alpha, event("designated", "a-h-G", dest='<dest uid="B"/>', now=now,
                            detail='<link uid="A" type="a-f-G-U-C" relation="p-p"/>'))
    back = Receiver("s-b2")
    world.connect(back, uid="B", callsign="BRAVO")
    assert back.uids() == ["designated"]


def test_is_storable_by_type(clock: ManualClock) -> None:
    now = clock.now_ms()
    assert is_storable(event("c", "b-t-f", now=now))
    assert is_storable(event("t", "t-x-m-c", now=now))
    assert is_storable(event("task", "t-s", now=now))
    assert not is_storable(event("p", "t-x-c-t", now=now))
    assert not is_storable(event("e", "b-a-o-tbl", now=now))
    assert not is_storable(event("sa", "a-f-G-U-C", now=now, detail='<contact callsign="X"/>'))


async def test_write_queue_is_bounded(tmp_path: Path, clock: ManualClock) -> None:
    world = World(tmp_path / "m.db", clock, max_queue=2)
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    # Synchronous callers have no loop for the writer task: the queue fills until a flush.
    for n in range(3):
        world.send(alpha, event(f"m{n}", dest='<dest uid="B"/>', now=clock.now_ms()))
    stats = world.mailbox.statistics()
    assert (stats["queued"], stats["overflow"], stats["write_queue"]) == (2, 1, 2)
    await world.mailbox.flush()
    assert world.mailbox.statistics()["write_queue"] == 0
    world.send(alpha, event("m3", dest='<dest uid="B"/>', now=clock.now_ms()))
    back = Receiver("s-b2")
    world.connect(back, uid="B", callsign="BRAVO")
    assert back.uids() == ["m0", "m1", "m3"]


async def test_mailbox_per_identity_is_bounded(tmp_path: Path, clock: ManualClock) -> None:
    world = World(tmp_path / "m.db", clock, max_per_identity=2)
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    for n in range(3):
        world.send(alpha, event(f"m{n}", dest='<dest uid="B"/>', now=clock.now_ms()))
    assert world.mailbox.statistics()["overflow"] == 1
    back = Receiver("s-b2")
    world.connect(back, uid="B", callsign="BRAVO")
    assert back.uids() == ["m0", "m1"]


async def test_unwritten_mail_is_delivered_and_then_written_with_its_cursor(world: World, clock: ManualClock) -> None:
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    world.send(alpha, event("m0", dest='<dest uid="B"/>', now=clock.now_ms()))
    back = Receiver("s-b2")
    world.connect(back, uid="B", callsign="BRAVO")  # before any write ran
    assert back.uids() == ["m0"]
    world.leave(back)
    await world.restart()
    again = Receiver("s-b3")
    world.connect(again, uid="B", callsign="BRAVO")
    assert again.uids() == []


async def test_delivered_rows_are_purged_from_the_file_over_time(world: World, clock: ManualClock) -> None:
    import sqlite3
    from contextlib import closing

    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    world.send(alpha, event("m0", dest='<dest uid="B"/>', now=clock.now_ms()))
    back = Receiver("s-b2")
    world.connect(back, uid="B", callsign="BRAVO")
    await world.mailbox.flush()
    clock.advance(601)
    world.leave(back)  # a registry change: the next write also purges
    await world.mailbox.flush()
    with closing(sqlite3.connect(world.path)) as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (0,)


async def test_kept_mail_is_handed_over_as_publications_to_the_session(world: World, clock: ManualClock) -> None:
    alpha, bravo = Receiver("s-a"), Receiver("s-b1")
    world.connect(alpha, uid="A", callsign="ALPHA")
    _register(world, bravo, "B", "BRAVO")
    world.send(alpha, event("m0", dest='<dest callsign="BRAVO"/>', now=clock.now_ms()))
    published: list[tuple[Envelope, Audience]] = []
    world.mailbox.deliver_through(lambda envelope, audience: published.append((envelope, audience)))
    again = Receiver("s-b2")
    world.connect(again, uid="B", callsign="BRAVO")
    assert again.received == [], "nothing is offered past the bus"
    assert [(e.event.uid, a) for e, a in published] == [("m0", to_sessions("s-b2"))]
