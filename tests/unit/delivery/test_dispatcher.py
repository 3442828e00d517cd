"""Dispatcher: resolves an audience against the local receivers, each receiver offered once."""

from __future__ import annotations

from rallypoint.clock import ManualClock
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.model.cot import Dest
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from tests.support.picture import Receiver, groups, marker

CLOCK = ManualClock()


def _node(*receivers: Receiver) -> Dispatcher:
    directory = Directory()
    for receiver in receivers:
        directory.add(receiver)
    return Dispatcher(directory)


def _envelope(sender: Receiver) -> Envelope:
    return Envelope(marker(CLOCK, "m-1"), sender.origin, 0)


def test_group_audience_reaches_each_reader_once_except_the_excluded() -> None:
    sender = Receiver("s", read_groups=groups("Red", "Blue"))
    both = Receiver("both", read_groups=groups("Red", "Blue"))
    red, green = Receiver("red", read_groups=groups("Red")), Receiver("green", read_groups=groups("Green"))
    dispatcher = _node(sender, both, red, green)
    count = dispatcher.deliver(_envelope(sender), Audience(groups=groups("Red", "Blue"), exclude="s"))
    assert count == 2 and dispatcher.delivered == 2
    assert len(both.received) == 1 and len(red.received) == 1
    assert not sender.received and not green.received


def test_single_group_audience_skips_the_excluded_sender() -> None:
    sender, other = Receiver("s"), Receiver("o")
    dispatcher = _node(sender, other)
    assert dispatcher.deliver(_envelope(sender), Audience(groups=sender.write_groups, exclude="s")) == 1
    assert not sender.received and len(other.received) == 1


def test_session_addresses_reach_those_still_connected() -> None:
    sender, bob = Receiver("s"), Receiver("b")
    dispatcher = _node(sender, bob)
    envelope = _envelope(sender)
    assert dispatcher.deliver(envelope, Audience(sessions=("b", "node-b:r:tls-9"), exclude="s")) == 1
    assert bob.received == [envelope]


def test_dests_resolve_against_this_nodes_directory_within_the_senders_groups() -> None:
    sender = Receiver("s", write_groups=groups("Red"))
    bob, blue = Receiver("b", read_groups=groups("Red")), Receiver("x", read_groups=groups("Blue"))
    dispatcher = _node(sender, bob, blue)
    directory = dispatcher._directory
    directory.bind("b", uid="uid-B", callsign="BOB")
    directory.bind("x", uid="uid-X", callsign="BLUE")
    dests = (Dest(callsign="BOB"), Dest(uid="uid-B"), Dest(uid="uid-X"), Dest(uid="uid-S"), Dest(uid="elsewhere"))
    envelope = _envelope(sender)
    assert dispatcher.deliver(envelope, Audience(dests=dests, exclude="s", explicit=True)) == 1
    assert bob.received == [envelope] and not blue.received and not sender.received


def test_team_resolves_to_team_members_and_relays_reading_the_senders_groups() -> None:
    sender = Receiver("s")
    cyan, red, relay = Receiver("c"), Receiver("r"), Receiver("link", is_relay=True)
    dispatcher = _node(sender, cyan, red, relay)
    dispatcher._directory.bind("c", team="Cyan")
    dispatcher._directory.bind("r", team="Red")
    dispatcher._directory.bind("s", team="Cyan")
    assert dispatcher.deliver(_envelope(sender), Audience(team="Cyan", exclude="s", explicit=True)) == 2
    assert cyan.received and relay.received and not red.received and not sender.received


def test_the_same_envelope_object_is_offered_to_every_receiver() -> None:
    sender, a, b = Receiver("s"), Receiver("a"), Receiver("b")
    dispatcher = _node(sender, a, b)
    envelope = _envelope(sender)
    dispatcher.deliver(envelope, Audience(groups=sender.write_groups, exclude="s"))
    assert a.received[0] is envelope and b.received[0] is envelope


def test_empty_audience_reaches_nobody() -> None:
    sender, other = Receiver("s"), Receiver("o")
    dispatcher = _node(sender, other)
    assert dispatcher.deliver(_envelope(sender), Audience()) == 0 and not other.received


def test_mission_addresses_resolve_with_the_mission_resolver_only() -> None:
    sender, sub, other = Receiver("s"), Receiver("sub"), Receiver("o")
    dispatcher = _node(sender, sub, other)
    envelope = _envelope(sender)
    audience = Audience(dests=(Dest(mission="ops"), Dest(uid="uid-SUB")), exclude="s", explicit=True)
    assert dispatcher.deliver(envelope, audience) == 0, "no resolver: mission addresses reach nobody"
    asked: list[str] = []

    def subscribers(env: Envelope, name: str) -> list[Receiver]:
        asked.append(name)
        return [sub]

    dispatcher.resolve_missions(subscribers)
    dispatcher._directory.bind("sub", uid="uid-SUB")
    assert dispatcher.deliver(envelope, audience) == 1 and asked == ["ops"]
    assert sub.received == [envelope], "once, though addressed by mission and by uid"


class RunReceiver(Receiver):
    """A receiver that takes a run of envelopes in one call, as a stream session does."""

    def __init__(self, sub_id: str) -> None:
        super().__init__(sub_id)
        self.calls: list[int] = []

    def offer_many(self, envelopes: list[Envelope]) -> None:
        self.calls.append(len(envelopes))
        self.received.extend(envelopes)


def _marker(sender: Receiver, uid: str) -> Envelope:
    return Envelope(marker(CLOCK, uid), sender.origin, 0)


def test_held_broadcasts_go_out_as_runs_in_order_on_release() -> None:
    sender, plain, runs = Receiver("s"), Receiver("p"), RunReceiver("r")
    dispatcher = _node(sender, plain, runs)
    audience = Audience(groups=sender.write_groups, exclude="s")
    dispatcher.hold()
    counts = [dispatcher.deliver(_marker(sender, f"m-{i}"), audience) for i in range(3)]
    # Counted as delivered at once (metrics), offered at the release.
    assert counts == [2, 2, 2] and dispatcher.delivered == 6
    assert plain.received == [] and runs.received == []
    dispatcher.release()
    assert plain.uids() == runs.uids() == ["m-0", "m-1", "m-2"] and not sender.received
    assert runs.calls == [3]  # one call for the run


def test_anything_else_delivered_while_held_goes_after_the_run_before_it() -> None:
    sender, other, bob = Receiver("s"), Receiver("o"), RunReceiver("b")
    dispatcher = _node(sender, other, bob)
    audience = Audience(groups=sender.write_groups, exclude="s")
    dispatcher.hold()
    dispatcher.deliver(_marker(sender, "m-0"), audience)
    dispatcher.deliver(_marker(other, "m-other"), Audience(groups=sender.write_groups, exclude="o"))
    dispatcher.deliver(_marker(sender, "m-1"), audience)
    dispatcher.deliver(_marker(sender, "reply"), Audience(sessions=("b",)))
    dispatcher.deliver(_marker(sender, "m-2"), audience)
    dispatcher.release()
    assert bob.uids() == ["m-0", "m-other", "m-1", "reply", "m-2"]
    assert other.uids() == ["m-0", "m-1", "m-2"] and sender.uids() == ["m-other"]


def test_a_directory_change_while_held_delivers_the_run_to_the_receivers_it_had() -> None:
    sender, early = Receiver("s"), Receiver("e")
    dispatcher = _node(sender, early)
    directory = dispatcher._directory
    audience = Audience(groups=sender.write_groups, exclude="s")
    dispatcher.hold()
    dispatcher.deliver(_marker(sender, "m-0"), audience)
    late = Receiver("l")
    directory.add(late)  # joins between the two events: gets only the second, as without holding
    dispatcher.deliver(_marker(sender, "m-1"), audience)
    directory.remove("e")  # leaves before the release: had m-1 delivered first
    dispatcher.release()
    assert early.uids() == ["m-0", "m-1"] and late.uids() == ["m-1"]


def test_nested_holds_deliver_at_the_outermost_release_and_flush_delivers_at_once() -> None:
    sender, bob = Receiver("s"), Receiver("b")
    dispatcher = _node(sender, bob)
    audience = Audience(groups=sender.write_groups, exclude="s")
    dispatcher.hold()
    dispatcher.hold()
    dispatcher.deliver(_marker(sender, "m-0"), audience)
    dispatcher.release()
    assert bob.received == []
    dispatcher.flush()
    assert bob.uids() == ["m-0"]
    dispatcher.deliver(_marker(sender, "m-1"), audience)
    dispatcher.release()
    assert bob.uids() == ["m-0", "m-1"]
    # Not held any more: delivered at once.
    dispatcher.deliver(_marker(sender, "m-2"), audience)
    assert bob.uids() == ["m-0", "m-1", "m-2"]
