"""Kept mail of another node on the delivering node: offered as mail, written or not reported back once."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from rallypoint.clock import ManualClock
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.mailbox_inflight import MailEnvelope
from rallypoint.services.mailbox_remote import (
    MAIL_REPORT_TYPE,
    MailReport,
    MailTag,
    RemoteMail,
    message_key,
    read_report,
    read_tag,
    tagged_origin,
)
from tests.support.picture import Receiver
from tests.unit.services.test_mailbox import World, event
from tests.unit.services.test_mailbox_inflight import WritingSub

HOLDER, HERE = "node-a", "node-b"


class Published:
    """The reports the delivering node publishes."""

    def __init__(self) -> None:
        self.reports: list[MailReport] = []

    def __call__(self, envelope: Envelope, audience: Audience) -> None:
        assert envelope.event.type == MAIL_REPORT_TYPE and audience.delivery_only and audience.is_empty
        report = read_report(envelope.event)
        assert report is not None
        self.reports.append(report)


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def directory() -> Directory:
    return Directory()


@pytest.fixture
def remote(directory: Directory, published: Published) -> RemoteMail:
    return RemoteMail(directory, ManualClock(), node=HERE, publish=published)


def _mail(uid: str, session: str, seq: int) -> tuple[Envelope, MailTag]:
    tag = MailTag(node=HERE, session=session, identity="uid:B", seq=seq)
    origin = msgspec.structs.replace(tagged_origin(tag, frozenset({"Cyan"})), node=HOLDER)
    return Envelope(event(uid, now=1_000), origin, 1_000), tag


def test_a_tag_survives_the_origin_and_anything_else_is_no_tag() -> None:
    tag = MailTag(node=HERE, session="node-b:r:tcp-1", identity="principal:a/b c", seq=7)
    assert read_tag(tagged_origin(tag, frozenset())) == tag
    assert read_tag(Origin(session_id="node-b:r:tcp-1")) is None
    assert read_tag(Origin(session_id="mailbox {not json")) is None


def test_mail_written_by_the_session_is_reported_written_once(
    remote: RemoteMail, directory: Directory, published: Published
) -> None:
    sub = WritingSub("s-b")
    directory.add(sub)
    envelope, tag = _mail("m0", "s-b", 3)
    assert remote.is_mine(tag)
    remote.deliver(envelope, tag)
    assert [type(e) for e in sub.waiting] == [MailEnvelope] and published.reports == []
    sub.write()
    remote.left("s-b")
    assert published.reports == [MailReport(HOLDER, "s-b", "uid:B", 3, written=True)]
    # Handed over once more (the holder restarted before it read the report): reported, not rewritten.
    again = WritingSub("s-b2")
    directory.add(again)
    remote.deliver(*_mail("m0", "s-b2", 3))
    assert again.waiting == [] and published.reports[-1] == MailReport(HOLDER, "s-b2", "uid:B", 3, written=True)


def test_mail_a_session_left_without_writing_is_reported_not_written(
    remote: RemoteMail, directory: Directory, published: Published
) -> None:
    sub = WritingSub("s-b")
    directory.add(sub)
    for seq in (1, 2):
        remote.deliver(*_mail(f"m{seq}", "s-b", seq))
    sub.write("m1")
    remote.left("s-b")
    sub.write()  # too late: the holder has it back already
    assert [(r.seq, r.written) for r in published.reports] == [(1, True), (2, False)]


def test_mail_for_a_session_gone_already_is_reported_not_written(remote: RemoteMail, published: Published) -> None:
    remote.deliver(*_mail("m0", "s-gone", 1))
    assert published.reports == [MailReport(HOLDER, "s-gone", "uid:B", 1, written=False)]


def test_mail_the_recipient_got_live_is_reported_written_and_not_offered_again(
    remote: RemoteMail, directory: Directory, published: Published
) -> None:
    sub = WritingSub("s-b")
    directory.add(sub)
    envelope, tag = _mail("m0", "s-b", 1)
    remote.live.add("uid:B", message_key(envelope.event))
    remote.deliver(envelope, tag)
    assert sub.waiting == [] and remote.duplicates == 1
    assert published.reports == [MailReport(HOLDER, "s-b", "uid:B", 1, written=True)]


def test_another_version_of_an_item_is_not_taken_for_the_one_seen_live(
    remote: RemoteMail, directory: Directory
) -> None:
    sub = WritingSub("s-b")
    directory.add(sub)
    remote.live.add("uid:B", ("m0", 500))  # an earlier version of the same item
    remote.deliver(*_mail("m0", "s-b", 1))
    assert [e.event.uid for e in sub.waiting] == ["m0"]


class Holder:
    """Node A's mailbox keeping mail for B, which comes back as a session of node B."""

    def __init__(self, world: World, clock: ManualClock) -> None:
        self.world = world
        self.clock = clock
        self.handed: list[tuple[MailTag, Envelope]] = []
        world.mailbox.deliver_through(self._publish)
        alpha, bravo = Receiver("s-a"), Receiver("s-b0")
        world.connect(alpha, uid="A", callsign="ALPHA")
        world.connect(bravo, uid="B", callsign="BRAVO")
        world.leave(bravo)
        for n in range(3):
            world.send(alpha, event(f"m{n}", dest='<dest uid="B"/>', now=clock.now_ms()))
        # Node B's side: its reports go straight to node A's bus subscriber.
        self.b_directory = Directory()
        self.node_b = RemoteMail(self.b_directory, clock, node=HERE, publish=self._from_b)

    def _publish(self, envelope: Envelope, audience: Audience) -> None:
        tag = read_tag(envelope.origin)
        assert tag is not None and audience.delivery_only and audience.is_empty
        envelope.origin = msgspec.structs.replace(envelope.origin, node=HOLDER)
        self.handed.append((tag, envelope))

    def uids(self) -> list[str]:
        return [envelope.event.uid for _, envelope in self.handed]

    def _from_b(self, envelope: Envelope, audience: Audience) -> None:
        envelope.origin = msgspec.structs.replace(envelope.origin, node=HERE)
        self.world.mailbox.on_bus(envelope, audience)

    def seen_on_b(self, session: str) -> None:
        """B's SA from a session of node B reaches node A over the bus."""
        sa = event("B", "a-f-G-U-C", now=self.clock.now_ms(),
                   detail='<contact callsign="BRAVO"/><takv platform="t" version="1" device="d" os="o"/>')
        self.world.mailbox.observe(Envelope(sa, Origin(session, node=HERE), self.clock.now_ms()), Audience())

    def on_b(self, session: str) -> WritingSub:
        """B comes back on node B: node A hands its mail over, node B offers it to the session."""
        sub = WritingSub(session)
        self.b_directory.add(sub)
        self.handed.clear()
        self.seen_on_b(session)
        for tag, envelope in self.handed:
            self.node_b.deliver(envelope, tag)
        return sub

    def leave_b(self, sub: WritingSub) -> None:
        self.b_directory.remove(sub.id)
        self.node_b.left(sub.id)


@pytest.fixture
def holder(tmp_path: Path) -> Holder:
    clock = ManualClock()
    return Holder(World(tmp_path / "mailbox.db", clock, node=HOLDER), clock)  # type: ignore[arg-type]


def test_the_holder_retires_written_mail_and_keeps_what_was_not_written(holder: Holder) -> None:
    first = holder.on_b("node-b:r:tcp-1")
    assert first.uids() == ["m0", "m1", "m2"]
    stats = holder.world.mailbox.statistics()
    assert (stats["delivered"], stats["in_flight"]) == (0, 3)  # handed to the bus, not written yet
    first.write("m0")
    holder.leave_b(first)
    stats = holder.world.mailbox.statistics()
    assert (stats["delivered"], stats["in_flight"], stats["returned"], stats["pending"]) == (1, 0, 2, 2)
    second = holder.on_b("node-b:r:tcp-2")
    assert second.uids() == ["m1", "m2"]


def test_the_departure_of_the_session_returns_its_mail_and_a_late_written_report_still_counts(
    holder: Holder,
) -> None:
    first = holder.on_b("node-b:r:tcp-1")
    # Node B's departure notice overtakes its written report (another JetStream class).
    gone = event("B", "t-x-d-d", now=holder.clock.now_ms(), detail='<link uid="B" relation="p-p"/>')
    holder.world.mailbox.observe(Envelope(gone, Origin(first.id, node=HERE), 0), Audience())
    assert holder.world.mailbox.statistics()["pending"] == 3
    first.write("m0")
    holder.leave_b(first)  # m1 and m2 reported not written: nothing of them is in flight any more
    stats = holder.world.mailbox.statistics()
    assert (stats["delivered"], stats["pending"], stats["returned"]) == (1, 2, 3)
    assert holder.on_b("node-b:r:tcp-2").uids() == ["m1", "m2"]


def test_malformed_tags_and_reports_are_counted_and_go_no_further(remote: RemoteMail, published: Published) -> None:
    bad_tag = Envelope(event("m0", now=1), Origin("mailbox {oops", node=HOLDER), 1)
    bad_report = Envelope(event("r0", MAIL_REPORT_TYPE, now=1, detail="not json"), Origin("x", node=HOLDER), 1)
    assert remote.receive(bad_tag) is None and remote.receive(bad_report) is None
    assert remote.malformed == 2 and published.reports == []


def test_a_report_for_another_holder_and_mail_for_another_node_are_left_alone(
    remote: RemoteMail, directory: Directory, published: Published
) -> None:
    sub = WritingSub("s-b")
    directory.add(sub)
    elsewhere = MailTag(node="node-c", session="s-b", identity="uid:B", seq=1)
    mail = Envelope(event("m0", now=1), msgspec.structs.replace(tagged_origin(elsewhere, frozenset()), node=HOLDER), 1)
    assert remote.receive(mail) is None and sub.waiting == []
    sent: list[Envelope] = []
    # Node D reports on mail node C handed over: nothing for node B.
    RemoteMail(Directory(), ManualClock(), node="node-d", publish=lambda e, a: sent.append(e)).deliver(
        Envelope(event("m1", now=1), tagged_origin(elsewhere, frozenset()), 1), elsewhere,
    )
    assert remote.receive(sent[0]) is None
    assert (remote.malformed, published.reports) == (0, [])
