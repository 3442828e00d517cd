"""Router rules at unit level: who receives an event, decided over a Directory (no sockets)."""

from __future__ import annotations

from rallypoint.clock import ManualClock
from rallypoint.delivery.dispatcher import resolve
from rallypoint.model.cot import Dest
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience, Router
from tests.support.picture import ANON, Receiver, chat, event, groups, marker, sample

CLOCK = ManualClock()


def _setup(*receivers: Receiver) -> tuple[Directory, Router]:
    directory = Directory()
    for receiver in receivers:
        directory.add(receiver)
    return directory, Router(directory)


def _route(router: Router, sender: Receiver, detail: str = "", cot_type: str = "a-f-G-U-C") -> Audience:
    return router.route(Envelope(event(CLOCK, "u-1", cot_type, detail), sender.origin, 0))


def _ids(directory: Directory, router: Router, envelope: Envelope) -> tuple[str, ...]:
    """Who this node delivers the envelope to: the router's addresses resolved by the dispatcher."""
    return tuple(sub.id for sub in resolve(directory, envelope, router.route(envelope)))


def _reached(directory: Directory, router: Router, sender: Receiver, detail: str) -> tuple[str, ...]:
    return _ids(directory, router, Envelope(event(CLOCK, "u-1", "a-f-G-U-C", detail), sender.origin, 0))


def test_implicit_delivery_names_the_senders_write_groups_and_excludes_it() -> None:
    sender = Receiver("s", read_groups=groups("Red"), write_groups=groups("Red", "Blue"))
    _, router = _setup(sender)
    audience = router.route(Envelope(marker(CLOCK, "m-1"), sender.origin, 0))
    assert audience == Audience(groups=groups("Red", "Blue"), exclude="s")
    assert not audience.explicit


def test_empty_marti_is_a_broadcast() -> None:
    sender = Receiver("s")
    _, router = _setup(sender)
    audience = _route(router, sender, "<marti/>")
    assert audience.groups == ANON and not audience.explicit


def test_dest_by_callsign_uid_and_group_reaches_only_those_addressed() -> None:
    sender, bob, carol, dave = Receiver("s"), Receiver("b"), Receiver("c"), Receiver("d", read_groups=groups("Ops"))
    directory, router = _setup(sender, bob, carol, dave)
    directory.bind("b", uid="uid-B", callsign="BOB")
    directory.bind("c", uid="uid-C", callsign="CAROL")
    sender_in_ops = Receiver("s", write_groups=groups("Ops", "__ANON__"))
    assert _reached(directory, router, sender, '<marti><dest callsign="BOB"/></marti>') == ("b",)
    assert _reached(directory, router, sender, '<marti><dest uid="uid-C"/></marti>') == ("c",)
    by_group = _route(router, sender_in_ops, '<marti><dest group="Ops"/></marti>')
    assert by_group.dests == (Dest(group="Ops"),) and by_group.explicit and not by_group.groups
    assert _reached(directory, router, sender_in_ops, '<marti><dest group="Ops"/></marti>') == ("d",)
    both = '<marti><dest callsign="BOB"/><dest uid="uid-B"/><dest uid="uid-C"/></marti>'
    assert _reached(directory, router, sender, both) == ("b", "c"), "one delivery per receiver, however many dests"


def test_dest_to_a_receiver_outside_the_senders_groups_is_unresolved() -> None:
    sender = Receiver("s", read_groups=groups("Red"))
    blue = Receiver("b", read_groups=groups("Blue"))
    directory, router = _setup(sender, blue)
    directory.bind("b", uid="uid-B", callsign="BOB")
    audience = _route(router, sender, '<marti><dest callsign="BOB"/></marti>')
    assert _reached(directory, router, sender, '<marti><dest callsign="BOB"/></marti>') == () and audience.explicit
    assert audience.unresolved == (Dest(callsign="BOB"),) and audience.reaches_nobody


def test_dest_never_returns_to_the_sender_and_unknown_addresses_are_unresolved() -> None:
    sender = Receiver("s")
    directory, router = _setup(sender)
    directory.bind("s", uid="uid-S", callsign="ME")
    audience = _route(router, sender, '<marti><dest callsign="ME"/><dest uid="ghost"/></marti>')
    assert _reached(directory, router, sender, '<marti><dest callsign="ME"/><dest uid="ghost"/></marti>') == ()
    assert audience.unresolved == (Dest(callsign="ME"), Dest(uid="ghost"))


def test_mission_dest_is_never_reported_unresolved() -> None:
    sender = Receiver("s")
    directory, router = _setup(sender)
    audience = _route(router, sender, '<marti><dest mission="ops-mission"/></marti>')
    assert audience.explicit and audience.unresolved == ()
    assert _reached(directory, router, sender, '<marti><dest mission="ops-mission"/></marti>') == ()


def test_all_chat_rooms_goes_to_the_senders_groups() -> None:
    sender = Receiver("s", read_groups=groups("Red"), write_groups=groups("Red"))
    _, router = _setup(sender, Receiver("r", read_groups=groups("Red")))
    msg = chat(CLOCK, "uid-S", room="All Chat Rooms", chat_id="All Chat Rooms")
    audience = router.route(Envelope(msg, sender.origin, 0))
    assert audience == Audience(groups=groups("Red"), exclude="s")


def test_direct_chat_without_marti_goes_to_the_chat_id_or_the_listed_members() -> None:
    sender, bob, carol = Receiver("s"), Receiver("b"), Receiver("c")
    directory, router = _setup(sender, bob, carol)
    directory.bind("b", uid="uid-B", callsign="BOB")
    directory.bind("c", uid="uid-C", callsign="CAROL")
    direct = chat(CLOCK, "uid-S", room="BOB", chat_id="uid-B")
    assert _ids(directory, router, Envelope(direct, sender.origin, 0)) == ("b",)
    group_chat = chat(CLOCK, "uid-S", room="pair", chat_id="room-1", parent="UserGroups", members=("uid-B", "uid-C"))
    audience = router.route(Envelope(group_chat, sender.origin, 0))
    assert _ids(directory, router, Envelope(group_chat, sender.origin, 0)) == ("b", "c") and audience.explicit


def test_direct_chat_to_an_unknown_uid_is_unresolved() -> None:
    sender = Receiver("s")
    directory, router = _setup(sender)
    envelope = Envelope(chat(CLOCK, "uid-S", room="X", chat_id="uid-X"), sender.origin, 0)
    audience = router.route(envelope)
    assert audience.explicit and _ids(directory, router, envelope) == () and audience.unresolved == (Dest(uid="uid-X"),)


def test_team_chat_reaches_team_members_in_the_senders_groups_and_relays() -> None:
    sender = Receiver("s")
    cyan, red, relay = Receiver("c"), Receiver("r"), Receiver("link", is_relay=True)
    outsider = Receiver("o", read_groups=groups("Other"))
    directory, router = _setup(sender, cyan, red, relay, outsider)
    directory.bind("c", team="Cyan")
    directory.bind("r", team="Red")
    directory.bind("o", team="Cyan")
    msg = chat(CLOCK, "uid-S", room="Cyan", chat_id="Cyan", parent="TeamGroups", members=("Cyan",))
    audience = router.route(Envelope(msg, sender.origin, 0))
    assert audience.team == "Cyan" and audience.explicit and not audience.reaches_nobody
    assert set(_ids(directory, router, Envelope(msg, sender.origin, 0))) == {"c", "link"}


def test_team_chat_to_a_team_nobody_is_on_reaches_nobody() -> None:
    sender, red = Receiver("s"), Receiver("r")
    directory, router = _setup(sender, red)
    directory.bind("r", team="Red")
    msg = chat(CLOCK, "uid-S", room="Cyan", chat_id="Cyan", parent="TeamGroups", members=("Cyan",))
    audience = router.route(Envelope(msg, sender.origin, 0))
    assert audience.reaches_nobody and audience.unresolved == (Dest(group="Cyan"),)
    assert _ids(directory, router, Envelope(msg, sender.origin, 0)) == ()


def test_named_room_under_team_groups_is_a_broadcast_to_the_senders_groups() -> None:
    sender = Receiver("s", write_groups=groups("Red"))
    _, router = _setup(sender)
    msg = chat(CLOCK, "uid-S", room="Briefing", chat_id="Briefing", parent="TeamGroups")
    assert router.route(Envelope(msg, sender.origin, 0)) == Audience(groups=groups("Red"), exclude="s")


def test_real_chat_samples_go_to_their_marti_dest() -> None:
    sender = Receiver("s")
    hummer, tron, demo2 = Receiver("h"), Receiver("t"), Receiver("d")
    directory, router = _setup(sender, hummer, tron, demo2)
    directory.bind("h", uid="S-1-5-21-3476584777-3751678839-889941227-17669", callsign="HUMMER")
    directory.bind("t", uid="ANDROID-304275b91c93405e", callsign="TRON")
    directory.bind("d", uid="ANDROID-d8c7f552857ee744", callsign="DEMO2")
    p2p = sample(CLOCK, "04_chat_p2p_atak_takserver_comment.xml")
    assert _ids(directory, router, Envelope(p2p, sender.origin, 0)) == ("h",)
    group = sample(CLOCK, "05_chat_group_atak_takserver_comment.xml")
    assert _ids(directory, router, Envelope(group, sender.origin, 0)) == ("t",), "marti/dest wins over chatgrp members"
