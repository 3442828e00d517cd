"""The mailbox between nodes: group mail not kept for a principal reading it on another node, and the
delivering node's memory of other nodes' mail it delivered surviving its restart."""

from __future__ import annotations

from pathlib import Path

import msgspec

from rallypoint.clock import ManualClock
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.mailbox_remote import MailReport, MailTag, read_report, tagged_origin
from tests.support.picture import Receiver
from tests.unit.services.test_mailbox import World, event
from tests.unit.services.test_mailbox_inflight import WritingSub

HOLDER, HERE = "node-a", "node-b"
RED = frozenset({"Red"})
TAKV = '<takv platform="t" version="1" device="d" os="o"/>'


def _sa(clock: ManualClock, uid: str, callsign: str) -> Envelope:
    return Envelope(
        event(uid, "a-f-G-U-C", now=clock.now_ms(), detail=f'<contact callsign="{callsign}"/>{TAKV}'),
        Origin("unused"),
        clock.now_ms(),
    )


def _from_node_b(envelope: Envelope, session: str, *, principal: str | None = None) -> Envelope:
    """``envelope`` as node A receives it from session ``session`` of node B (a Red client)."""
    origin = Origin(session, groups=RED, principal=principal, node=HERE, read_groups=RED)
    return Envelope(envelope.event, origin, envelope.received_ms)


def _departure(clock: ManualClock, uid: str, session: str) -> Envelope:
    gone = event(f"gone-{uid}", "t-x-d-d", now=clock.now_ms(), detail=f'<link uid="{uid}" relation="p-p"/>')
    return Envelope(gone, Origin(session, node=HERE), clock.now_ms())


async def test_group_mail_is_not_kept_for_a_principal_reading_the_group_on_another_node(tmp_path: Path) -> None:
    clock = ManualClock()
    holder = World(tmp_path / "a.db", clock, node=HOLDER)  # type: ignore[arg-type]
    sender = Receiver("a:s-r1", RED, RED, principal="red1")
    holder.connect(sender, uid="R1", callsign="RED1")
    # red2 is connected to node B, reading Red: node A learns it from its SA on the bus.
    holder.mailbox.observe(_from_node_b(_sa(clock, "R2", "RED2"), "b:s-r2", principal="red2"), Audience())
    holder.send(sender, event("to-red-1", dest='<dest group="Red"/>', now=clock.now_ms()))
    # Node B's dispatcher delivers it to red2 live: nothing is kept for red2 on node A.
    assert holder.mailbox.statistics()["queued"] == 0

    # Once red2 has left node B, a group message waits for it on node A, and only that one.
    holder.mailbox.observe(_departure(clock, "R2", "b:s-r2"), Audience())
    holder.send(sender, event("to-red-2", dest='<dest group="Red"/>', now=clock.now_ms()))
    assert holder.mailbox.statistics()["queued"] == 1
    back = Receiver("a:s-r2", RED, RED, principal="red2")
    holder.connect(back)
    assert back.uids() == ["to-red-2"]


async def test_a_departure_notice_of_another_uid_or_a_deleted_item_is_no_departure(tmp_path: Path) -> None:
    clock = ManualClock()
    holder = World(tmp_path / "a.db", clock, node=HOLDER)  # type: ignore[arg-type]
    sender = Receiver("a:s-r1", RED, RED, principal="red1")
    holder.connect(sender, uid="R1", callsign="RED1")
    holder.mailbox.observe(_from_node_b(_sa(clock, "R2", "RED2"), "b:s-r2", principal="red2"), Audience())
    holder.mailbox.observe(_departure(clock, "OTHER", "b:s-r2"), Audience())
    marker = event("del-1", "t-x-d-d", now=clock.now_ms(), detail='<link uid="marker-1" relation="none"/>')
    holder.mailbox.observe(Envelope(marker, Origin("b:s-r2", node=HERE), clock.now_ms()), Audience())
    holder.send(sender, event("to-red", dest='<dest group="Red"/>', now=clock.now_ms()))
    assert holder.mailbox.statistics()["queued"] == 0


class NodeB:
    """Node B's mailbox; node A's tagged mail arrives on its bus subscriber, its reports are collected."""

    def __init__(self, path: Path, clock: ManualClock) -> None:
        self.clock = clock
        self.world = World(path, clock, node=HERE)  # type: ignore[arg-type]
        self.reports: list[MailReport] = []
        self.world.mailbox.deliver_through(self._published)

    def _published(self, envelope: Envelope, audience: Audience) -> None:
        report = read_report(envelope.event)
        assert report is not None
        self.reports.append(report)

    async def restart(self) -> None:
        await self.world.restart()
        self.world.mailbox.deliver_through(self._published)

    def session(self, name: str) -> WritingSub:
        sub = WritingSub(name)
        self.world.connect(sub, uid="B", callsign="BRAVO")
        return sub

    def hand_over(self, uid: str, session: str, seq: int, *, time: int) -> None:
        """Node A hands its kept message ``uid`` (seq ``seq``) to ``session`` here."""
        tag = MailTag(node=HERE, session=session, identity="uid:B", seq=seq)
        origin = msgspec.structs.replace(tagged_origin(tag, frozenset({"__ANON__"})), node=HOLDER)
        self.world.mailbox.on_bus(Envelope(event(uid, now=time), origin, time), Audience(delivery_only=True))


async def test_mail_written_on_the_delivering_node_is_not_written_again_after_its_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    node_b = NodeB(tmp_path / "b.db", clock)
    first = node_b.session("b:s-1")
    sent = clock.now_ms()
    node_b.hand_over("m0", "b:s-1", 1, time=sent)
    first.write()
    assert node_b.reports == [MailReport(HOLDER, "b:s-1", "uid:B", 1, written=True)]
    await node_b.restart()  # node A restarts too before it reads that report: it hands m0 over again
    again = node_b.session("b:s-2")
    node_b.hand_over("m0", "b:s-2", 1, time=sent)
    node_b.hand_over("m0", "b:s-2", 2, time=sent + 1)  # a later version of the item is another message
    assert [e.event.uid for e in again.waiting] == ["m0"] and again.waiting[0].event.time == sent + 1
    assert node_b.reports[1] == MailReport(HOLDER, "b:s-2", "uid:B", 1, written=True)
    assert node_b.world.mailbox.statistics()["remote_duplicates"] == 1


async def test_mail_seen_live_on_the_delivering_node_is_not_written_again_after_its_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    node_b = NodeB(tmp_path / "b.db", clock)
    node_b.session("b:s-1")
    # A chat of node A addressed to B reaches B live here (node A kept it too: B's SA was not there yet).
    sent = clock.now_ms()
    live = event("m0", now=sent, dest='<dest uid="B"/>')
    origin = Origin("a:s-a", groups=frozenset({"__ANON__"}), node=HOLDER)
    envelope = Envelope(live, origin, sent)
    node_b.world.mailbox.observe(envelope, node_b.world.router.route(envelope))
    await node_b.restart()
    again = node_b.session("b:s-2")
    node_b.hand_over("m0", "b:s-2", 1, time=sent)
    assert again.waiting == [] and node_b.reports == [MailReport(HOLDER, "b:s-2", "uid:B", 1, written=True)]


async def test_seen_rows_expire_with_the_mail_they_stand_for(tmp_path: Path) -> None:
    clock = ManualClock()
    node_b = NodeB(tmp_path / "b.db", clock)
    node_b.world.options["ttl_s"] = 10.0
    await node_b.restart()
    first = node_b.session("b:s-1")
    node_b.hand_over("m0", "b:s-1", 1, time=clock.now_ms())
    first.write()
    clock.advance(11.0)
    await node_b.restart()
    again = node_b.session("b:s-2")
    node_b.hand_over("m0", "b:s-2", 1, time=clock.now_ms() - 11_000)
    assert [e.event.uid for e in again.waiting] == ["m0"]  # forgotten: the holder would have dropped it


async def test_a_principal_without_sa_that_got_group_mail_live_elsewhere_is_reported_to_the_holder(
    tmp_path: Path,
) -> None:
    """Node B delivers node A's Red message live to red2, which has sent no SA (node A cannot know it
    is connected, and keeps the message for it); B tells A, which retires its copy at once."""
    clock = ManualClock()
    holder = World(tmp_path / "a.db", clock, node=HOLDER)  # type: ignore[arg-type]
    sender = Receiver("a:s-r1", RED, RED, principal="red1")
    holder.connect(sender, uid="R1", callsign="RED1")
    for visit in (Receiver("a:s-r2", RED, RED, principal="red2"), Receiver("a:s-r3", RED, RED, principal="red3")):
        holder.connect(visit, uid=f"U-{visit.principal}", callsign=str(visit.principal).upper())
        holder.leave(visit)
    holder.send(sender, event("to-red", dest='<dest group="Red"/>', now=clock.now_ms()))
    assert holder.mailbox.statistics()["pending"] == 2

    node_b = NodeB(tmp_path / "b.db", clock)
    quiet = Receiver("b:s-r2", RED, RED, principal="red2")
    node_b.world.connect(quiet)  # joined, no SA yet
    talking = WritingSub("b:s-r3", RED, RED, principal="red3")
    node_b.world.connect(talking, uid="U-red3", callsign="RED3")  # sent its SA: the holder hears of it
    on_b = Envelope(
        event("to-red", dest='<dest group="Red"/>', now=clock.now_ms()),
        Origin("a:s-r1", groups=RED, principal="red1", node=HOLDER),
        clock.now_ms(),
    )
    node_b.world.mailbox.observe(on_b, node_b.world.router.route(on_b))
    assert node_b.reports == [
        MailReport(HOLDER, "b:s-r2", "principal:red2", 0, True, uid="to-red", time=on_b.event.time)
    ]

    # Node A reads the report: red2's copy is delivered, red3's still waits for red3's next SA.
    report = Envelope(
        event("r", "t-x-rp-mail", now=clock.now_ms(), detail=msgspec.json.encode(node_b.reports[0]).decode()),
        Origin("mailbox", node=HERE),
        clock.now_ms(),
    )
    holder.mailbox.on_bus(report, Audience(delivery_only=True))
    stats = holder.mailbox.statistics()
    assert (stats["pending"], stats["delivered"]) == (1, 1)
    back = Receiver("a:s-r2b", RED, RED, principal="red2")
    holder.connect(back)
    assert back.uids() == []
