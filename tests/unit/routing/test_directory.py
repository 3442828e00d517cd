"""Directory: the index of local receivers by id, uid, callsign, team and read group."""

from __future__ import annotations

from rallypoint.routing.directory import Directory, can_reach
from tests.support.picture import Receiver, groups


def test_groups_in_and_out_a_sender_reaches_readers_of_its_write_groups_only() -> None:
    assert can_reach(groups("Red"), groups("Red", "Blue"))
    assert not can_reach(groups("Red"), groups("Blue"))
    assert not can_reach(frozenset(), groups("Red"))


def test_readers_are_indexed_by_read_group_and_forgotten_on_remove() -> None:
    directory = Directory()
    a, b = Receiver("a", read_groups=groups("Red", "Blue")), Receiver("b", read_groups=groups("Red"))
    directory.add(a)
    directory.add(b)
    assert {s.id for s in directory.readers("Red")} == {"a", "b"}
    assert [s.id for s in directory.readers("Blue")] == ["a"]
    assert directory.remove("a") is a
    assert [s.id for s in directory.readers("Red")] == ["b"] and list(directory.readers("Blue")) == []
    assert directory.remove("a") is None and len(directory) == 1


def test_regroup_moves_a_receiver_between_read_groups() -> None:
    directory = Directory()
    a = Receiver("a", read_groups=groups("Red"))
    directory.add(a)
    a.read_groups = groups("Blue")
    directory.regroup(a, groups("Red"))
    assert list(directory.readers("Red")) == [] and [s.id for s in directory.readers("Blue")] == ["a"]


def test_offers_now_follows_every_change_and_a_snapshot_taken_stays_as_it_was() -> None:
    directory = Directory()
    a, b = Receiver("a", read_groups=groups("Red")), Receiver("b", read_groups=groups("Red", "Blue"))
    assert directory.offers_now("Red") == ()
    directory.add(a)
    taken = directory.offers_now("Red")
    assert [i for i, _, _ in taken] == ["a"] and directory.offers_now("Red") is taken  # made once
    assert taken[0][1] == a.offer  # the subscriber's own offer, looked up once
    directory.add(b)
    assert [i for i, _, _ in directory.offers_now("Red")] == ["a", "b"] and [i for i, _, _ in taken] == ["a"]
    assert [i for i, _, _ in directory.offers_now("Blue")] == ["b"]
    counts = [directory.count_now("Red", exclude) for exclude in (None, "a", "x")]
    assert counts == [2, 1, 2]
    assert directory.count_now("Green", None) == 0
    b.read_groups = groups("Blue")
    directory.regroup(b, groups("Red", "Blue"))
    assert [i for i, _, _ in directory.offers_now("Red")] == ["a"]
    assert [i for i, _, _ in directory.offers_now("Blue")] == ["b"]
    directory.remove("a")
    assert directory.offers_now("Red") == () and [i for i, _, _ in directory.offers_now("Blue")] == ["b"]
    directory.add(a)  # a reconnect under the same id
    assert [i for i, _, _ in directory.offers_now("Red")] == ["a"]


def test_a_reconnecting_client_takes_its_uid_and_callsign_over() -> None:
    directory = Directory()
    old, new = Receiver("old"), Receiver("new")
    directory.add(old)
    directory.add(new)
    directory.bind("old", uid="uid-1", callsign="ALPHA", team="Cyan")
    directory.bind("new", uid="uid-1", callsign="ALPHA")
    assert directory.by_uid("uid-1") is new and directory.by_callsign("ALPHA") is new
    directory.remove("old")
    assert directory.by_uid("uid-1") is new, "the old session leaving must not unbind the new one"
    assert directory.team_of("old") is None


def test_a_new_callsign_replaces_the_old_one() -> None:
    directory = Directory()
    directory.add(Receiver("a"))
    directory.bind("a", callsign="ALPHA")
    directory.bind("a", callsign="BRAVO")
    assert directory.by_callsign("ALPHA") is None and directory.callsign_of("a") == "BRAVO"


def test_relayed_contacts_resolve_to_the_relay_unless_a_local_client_holds_them() -> None:
    directory = Directory()
    link, local = Receiver("link", is_relay=True), Receiver("local")
    directory.add(link)
    directory.add(local)
    directory.bind("local", uid="uid-L", callsign="LOCAL")
    directory.bind_relayed("link", uid="uid-R", callsign="REMOTE")
    directory.bind_relayed("link", uid="uid-L", callsign="LOCAL")
    assert directory.by_uid("uid-R") is link and directory.by_callsign("REMOTE") is link
    assert directory.by_uid("uid-L") is local and directory.by_callsign("LOCAL") is local
    assert directory.is_relay("link") and not directory.is_relay("local")
    directory.remove("link")
    assert directory.by_uid("uid-R") is None and directory.by_uid("uid-L") is local


def test_relays_are_known_while_connected_and_counted_once_per_id() -> None:
    directory = Directory()
    link, client = Receiver("link", is_relay=True), Receiver("c")
    directory.add(client)
    assert not directory.is_relay("c") and not directory.is_relay("link")
    directory.add(link)
    directory.add(link)  # added again under the same id: still one relay
    assert directory.is_relay("link") and not directory.is_relay("c")
    directory.remove("link")
    assert not directory.is_relay("link")
    directory.add(Receiver("link"))
    assert not directory.is_relay("link"), "a plain subscriber under a former relay's id"
