"""Ingest.accept: identity, features, routing, persistence and publication of one event (no sockets)."""

from __future__ import annotations

import pytest

from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.security.policy import IdentityRefused
from tests.support.picture import chat, device_sa, groups, marker, picture


def test_an_event_is_published_once_and_delivered_to_the_senders_groups() -> None:
    pic = picture()
    alice, bob = pic.join("a", groups("Red")), pic.join("b", groups("Red"))
    blue = pic.join("c", groups("Blue"))
    envelope = pic.send(alice, marker(pic.clock, "m-1"))
    assert pic.published == [envelope] and pic.bus.published == 1
    assert bob.received == [envelope] and not alice.received and not blue.received
    assert pic.metrics.events_in["map_item"] == 1


def test_a_uid_held_by_another_principal_is_refused_before_anything_happens() -> None:
    pic = picture()
    alice = pic.join("a", principal="alice")
    mallory, bob = pic.join("m", principal="mallory"), pic.join("b")
    pic.identify(alice, "uid-A", "ALICE")
    published = len(pic.published)
    with pytest.raises(IdentityRefused):
        pic.send(mallory, device_sa(pic.clock, "uid-A", "FAKE"))
    assert len(pic.published) == published and pic.directory.by_callsign("FAKE") is None
    assert [e.event.detail.callsign for e in bob.received] == ["ALICE"]


def test_an_addressed_chat_that_reaches_nobody_comes_back_as_a_delivery_failure() -> None:
    pic = picture()
    alice, bob = pic.join("a"), pic.join("b")
    pic.identify(alice, "uid-A", "ALICE")
    msg = chat(pic.clock, "uid-A", room="GHOST", chat_id="uid-GHOST", marti='<marti><dest callsign="GHOST"/></marti>')
    pic.send(alice, msg)
    assert alice.types() == ["b-t-f-s"]
    failure = alice.received[0].event
    assert failure.detail.link_uid == msg.uid and b"GHOST is not reachable" in (failure.detail.xml or b"")
    assert bob.types() == ["a-f-G-U-C"], "the failed chat goes to nobody else"


def test_no_delivery_failure_when_a_hook_keeps_the_chat_for_later() -> None:
    pic = picture()
    alice = pic.join("a")
    held: list[Audience] = []

    def keep(envelope: Envelope, audience: Audience) -> bool:
        held.append(audience)
        return True

    pic.ingest.add_hook(keep)
    pic.send(alice, chat(pic.clock, "uid-A", room="X", chat_id="uid-X"))
    assert len(held) == 1 and held[0].unresolved and not alice.received


def test_a_chat_that_reaches_someone_sends_no_failure() -> None:
    pic = picture()
    alice, bob = pic.join("a"), pic.join("b")
    pic.identify(bob, "uid-B", "BOB")
    pic.send(alice, chat(pic.clock, "uid-A", room="BOB", chat_id="uid-B"))
    assert "b-t-f-s" not in alice.types()
    assert bob.types() == ["b-t-f"]


def test_republish_delivers_again_without_touching_the_picture() -> None:
    pic = picture()
    alice, bob = pic.join("a"), pic.join("b")
    envelope = pic.send(alice, marker(pic.clock, "m-1"))
    pic.presence.items.clear()
    pic.ingest.republish(envelope)
    assert bob.received == [envelope, envelope] and not pic.presence.items


def test_a_hook_with_types_sees_only_those_types_and_hooks_keep_their_order() -> None:
    pic = picture()
    alice = pic.join("a")
    seen: list[tuple[str, str]] = []
    pic.ingest.add_hook(lambda envelope, audience: seen.append(("all", envelope.event.type)))
    pic.ingest.add_hook(
        lambda envelope, audience: seen.append(("chats", envelope.event.type)), types=lambda t: t == "b-t-f"
    )
    pic.send(alice, marker(pic.clock, "m-1"))
    pic.send(alice, chat(pic.clock, "uid-A", room="All Chat Rooms", chat_id="All Chat Rooms"))
    # A hook added later takes the types already seen too (the per-type lists are rebuilt).
    pic.ingest.add_hook(lambda envelope, audience: seen.append(("late", envelope.event.type)))
    pic.send(alice, marker(pic.clock, "m-2"))
    marker_type = pic.published[0].event.type
    assert seen == [
        ("all", marker_type),
        ("all", "b-t-f"),
        ("chats", "b-t-f"),
        ("all", marker_type),
        ("late", marker_type),
    ]


def test_an_addressed_only_hook_sees_addressed_events_and_can_keep_them() -> None:
    pic = picture()
    alice = pic.join("a")
    pic.identify(alice, "uid-A", "ALICE")
    seen: list[str] = []

    def keep(envelope: Envelope, audience: Audience) -> bool:
        seen.append(envelope.event.uid)
        return True

    pic.ingest.add_hook(keep, addressed_only=True)
    pic.send(alice, marker(pic.clock, "m-broadcast"))
    to_ghost = '<marti><dest callsign="GHOST"/></marti>'
    addressed = chat(pic.clock, "uid-A", room="GHOST", chat_id="uid-GHOST", marti=to_ghost)
    pic.send(alice, addressed)
    assert seen == [addressed.uid]
    # It answered True (kept for later): no delivery-failure notice for the unreachable recipient.
    assert "b-t-f-s" not in alice.types()


def test_a_hook_whose_types_refuse_a_chat_cannot_keep_it() -> None:
    # Only a hook that is called can answer True (kept for later): the failure notice still goes.
    pic = picture()
    alice = pic.join("a")
    pic.identify(alice, "uid-A", "ALICE")
    pic.ingest.add_hook(lambda envelope, audience: True, types=lambda t: t.startswith("a-"))
    pic.send(
        alice,
        chat(pic.clock, "uid-A", room="GHOST", chat_id="uid-GHOST", marti='<marti><dest callsign="GHOST"/></marti>'),
    )
    assert "b-t-f-s" in alice.types()
