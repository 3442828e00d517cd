"""The cluster-wide contact index: an addressee connected to another node is reachable.

Two nodes share one in-process bus fan-out (``tests/support/cluster.py``): each has its own
directory, and learns the other's contacts only from what crosses the bus.
"""

from __future__ import annotations

from rallypoint.clock import ManualClock
from rallypoint.model.cot import CotEvent, Dest
from tests.support.cluster import cluster
from tests.support.picture import chat, groups

CLOCK = ManualClock()


def _chat_to_bob(sender_uid: str) -> CotEvent:
    return chat(CLOCK, sender_uid, room="BOB", chat_id="uid-B", marti='<marti><dest callsign="BOB"/></marti>')


def test_a_chat_to_a_contact_on_another_node_is_delivered_there_without_a_failure_notice() -> None:
    _, (a, b) = cluster("node-a", "node-b")
    alice, bob = a.join("alice"), b.join("bob")
    a.identify(alice, "uid-A", "ALICE")
    b.identify(bob, "uid-B", "BOB")
    assert len(a.contacts) == 1 and len(b.contacts) == 1, "each node learned the other's contact"
    a.send(alice, _chat_to_bob("uid-A"))
    assert "b-t-f-s" not in alice.types()
    assert bob.types() == ["a-f-G-U-C", "b-t-f"], "node B resolved the callsign against its own session"


def test_after_the_contact_disconnects_the_sender_gets_the_failure_notice() -> None:
    _, (a, b) = cluster("node-a", "node-b")
    alice, bob = a.join("alice"), b.join("bob")
    a.identify(alice, "uid-A", "ALICE")
    b.identify(bob, "uid-B", "BOB")
    b.leave(bob)
    assert len(a.contacts) == 0, "the disconnect notice node B published made node A forget Bob"
    a.send(alice, _chat_to_bob("uid-A"))
    assert alice.types()[-1] == "b-t-f-s"


def test_a_remote_contact_outside_the_senders_groups_is_unreachable() -> None:
    _, (a, b) = cluster("node-a", "node-b")
    alice = a.join("alice", groups("Red"))
    bob = b.join("bob", read=groups("Blue"), write=groups("Blue", "Red"))
    b.identify(bob, "uid-B", "BOB")
    a.send(alice, _chat_to_bob("uid-A"))
    assert alice.types()[-1] == "b-t-f-s"
    assert "b-t-f" not in bob.types(), "node B never widens the audience either"


def test_reachability_by_uid_group_and_team_across_nodes() -> None:
    _, (a, b) = cluster("node-a", "node-b")
    b.identify(b.join("bob", groups("Ops")), "uid-B", "BOB", team="Cyan")
    contacts = a.contacts
    ops = groups("Ops")
    assert contacts.reachable(Dest(uid="uid-B"), ops, "node-a:alice")
    assert contacts.reachable(Dest(group="Ops"), ops, "node-a:alice")
    assert not contacts.reachable(Dest(uid="uid-B"), groups("Other"), "node-a:alice")
    assert not contacts.reachable(Dest(uid="uid-B"), ops, "node-b:bob"), "never the sender itself"
    assert contacts.team_reachable("Cyan", ops, "node-a:alice")
    assert not contacts.team_reachable("Red", ops, "node-a:alice")


def test_team_chat_reaches_a_team_member_on_another_node() -> None:
    _, (a, b) = cluster("node-a", "node-b")
    alice, bob = a.join("alice"), b.join("bob")
    a.identify(alice, "uid-A", "ALICE", team="Cyan")
    b.identify(bob, "uid-B", "BOB", team="Cyan")
    msg = chat(CLOCK, "uid-A", room="Cyan", chat_id="Cyan", parent="TeamGroups", members=("Cyan",))
    a.send(alice, msg)
    assert bob.types()[-1] == "b-t-f" and "b-t-f-s" not in alice.types()


def test_a_contact_that_reconnects_on_another_node_moves_there() -> None:
    _, (a, b, c) = cluster("node-a", "node-b", "node-c")
    bob_b = b.join("bob")
    b.identify(bob_b, "uid-B", "BOB")
    bob_c = c.join("bob")
    c.identify(bob_c, "uid-B", "BOB")
    b.leave(bob_b)
    alice = a.join("alice")
    a.send(alice, _chat_to_bob("uid-A"))
    assert "b-t-f-s" not in alice.types() and bob_c.types()[-1] == "b-t-f"


def test_on_one_node_the_index_is_the_directory() -> None:
    _, (a,) = cluster("node-a")
    alice, bob = a.join("alice"), a.join("bob")
    a.identify(bob, "uid-B", "BOB")
    assert len(a.contacts) == 0, "own publications never add remote contacts"
    a.send(alice, _chat_to_bob("uid-A"))
    assert "b-t-f-s" not in alice.types() and bob.types()[-1] == "b-t-f"
