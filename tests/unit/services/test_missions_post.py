"""Mission notices are bus publications addressed to uids, groups or sessions, never direct offers."""

from __future__ import annotations

from rallypoint.clock import ManualClock
from rallypoint.model.cot import Dest
from rallypoint.model.mission import Mission, Role, Subscription
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience, to_sessions
from rallypoint.services.missions_post import MissionPost
from tests.support.picture import Receiver, groups, marker

CLOCK = ManualClock()
OPS = Mission(name="ops", guid="g-1", create_time=0, creator_uid="c", creator_principal=None, groups=groups("Ops"))


def _sub(uid: str) -> Subscription:
    return Subscription(mission="ops", client_uid=uid, principal=None, token="t", role=Role.SUBSCRIBER, create_time=0)


def _post(*receivers: Receiver) -> tuple[MissionPost, Directory, list[tuple[Envelope, Audience]]]:
    directory = Directory()
    for receiver in receivers:
        directory.add(receiver)
    post = MissionPost(directory, CLOCK)
    published: list[tuple[Envelope, Audience]] = []
    post.deliver_through(lambda envelope, audience: published.append((envelope, audience)))
    return post, directory, published


def test_subscribers_are_addressed_by_uid_within_the_missions_groups() -> None:
    here = Receiver("s-1", read_groups=groups("Ops"))
    post, directory, published = _post(here)
    directory.bind("s-1", uid="uid-1")
    post.to_subscribers([_sub("uid-1"), _sub("uid-elsewhere"), _sub("uid-1")], OPS, marker(CLOCK, "n-1"))
    [(envelope, audience)] = published
    assert audience.dests == (Dest(uid="uid-1"), Dest(uid="uid-elsewhere")) and audience.explicit
    assert audience.delivery_only and envelope.origin.groups == OPS.groups
    assert here.received == [], "delivered by the dispatchers, on whichever node each uid is"


def test_group_notices_go_to_the_missions_groups_and_addressees_to_their_sessions() -> None:
    ops, other = Receiver("s-1", read_groups=groups("Ops")), Receiver("s-2", read_groups=groups("Other"))
    post, _, published = _post(ops, other)
    post.to_readers(OPS, marker(CLOCK, "n-1"))
    post.to_addressees([ops, other], OPS, marker(CLOCK, "n-2"))
    assert [a for _, a in published] == [Audience(groups=OPS.groups, delivery_only=True), to_sessions("s-1")]


def test_without_a_bus_a_notice_is_delivered_on_this_node() -> None:
    here, outside = Receiver("s-1", read_groups=groups("Ops")), Receiver("s-2", read_groups=groups("Other"))
    directory = Directory()
    directory.add(here)
    directory.add(outside)
    directory.bind("s-1", uid="uid-1")
    directory.bind("s-2", uid="uid-2")
    MissionPost(directory, CLOCK).to_subscribers([_sub("uid-1"), _sub("uid-2")], OPS, marker(CLOCK, "n-1"))
    assert here.uids() == ["n-1"] and outside.received == [], "never beyond the mission's groups"
