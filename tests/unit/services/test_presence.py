"""Presence: own SA, map items, deletes and what a late joiner is given (through Ingest, no sockets)."""

from __future__ import annotations

from rallypoint.clock import ManualClock
from rallypoint.model.cot import CotEvent
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.security.policy import Claim
from rallypoint.services.messages import disconnect_delete
from rallypoint.services.presence import Presence, may_change
from tests.support.picture import ANON, Picture, delete, device_sa, event, groups, marker, picture


def _snapshot_uids(pic: Picture, sub_id: str) -> set[str]:
    sub = pic.directory.get(sub_id)
    assert sub is not None
    return {e.event.uid for e in pic.presence.snapshot_for(sub, pic.clock.now_ms())}


def test_device_sa_binds_uid_callsign_and_team_and_is_given_to_late_joiners() -> None:
    pic = picture()
    alice = pic.join("a")
    pic.identify(alice, "uid-A", "ALICE", "Cyan")
    assert pic.directory.uid_of("a") == "uid-A"
    assert pic.directory.by_callsign("ALICE") is alice and pic.directory.team_of("a") == "Cyan"
    assert set(pic.presence.sa) == {"uid-A"} and not pic.presence.items
    pic.join("late")
    assert _snapshot_uids(pic, "late") == {"uid-A"}
    assert _snapshot_uids(pic, "a") == set(), "a client is not given its own SA back"


def test_a_callsign_change_rebinds_and_tells_listeners() -> None:
    pic = picture()
    alice = pic.join("a")
    seen: list[tuple[str, str | None, str | None]] = []
    pic.presence.add_bind_listener(lambda *args: seen.append(args))
    pic.identify(alice, "uid-A", "ALICE")
    pic.identify(alice, "uid-A", "ALICE-2")
    assert pic.directory.by_callsign("ALICE-2") is alice and pic.directory.by_callsign("ALICE") is None
    assert seen == [("a", "uid-A", "ALICE"), ("a", None, "ALICE-2")]


def test_sa_leaves_with_its_session_but_items_stay() -> None:
    pic = picture()
    alice = pic.join("a")
    pic.identify(alice, "uid-A", "ALICE")
    pic.send(alice, marker(pic.clock, "m-1"))
    departed = pic.presence.forget_session("a")
    assert departed is not None and departed.event.uid == "uid-A"
    assert "uid-A" not in pic.presence.sa and "m-1" in pic.presence.items


def test_a_reconnected_client_keeps_its_sa_when_the_old_session_leaves() -> None:
    pic = picture()
    old = pic.join("old")
    pic.identify(old, "uid-A", "ALICE")
    new = pic.join("new")
    pic.identify(new, "uid-A", "ALICE")
    assert pic.presence.forget_session("old") is None
    assert pic.presence.sa["uid-A"].origin.session_id == "new"


def test_stale_items_are_not_given_and_expire() -> None:
    pic = picture()
    alice = pic.join("a")
    pic.send(alice, marker(pic.clock, "short", stale_s=5))
    pic.send(alice, marker(pic.clock, "long", stale_s=600))
    pic.join("late")
    pic.clock.advance(10)
    assert _snapshot_uids(pic, "late") == {"long"}
    assert pic.presence.expire(pic.clock.now_ms()) == 1 and set(pic.presence.items) == {"long"}


def test_items_are_given_only_to_readers_of_their_groups() -> None:
    pic = picture()
    red = pic.join("red", groups("Red"))
    pic.send(red, marker(pic.clock, "red-marker"))
    pic.join("blue", groups("Blue"))
    pic.join("red-2", groups("Red"))
    assert _snapshot_uids(pic, "blue") == set() and _snapshot_uids(pic, "red-2") == {"red-marker"}


def test_addressed_items_are_not_kept() -> None:
    pic = picture()
    alice = pic.join("a")
    pic.send(alice, event(pic.clock, "m-1", "b-m-p-s-m", '<marti><dest callsign="BOB"/></marti>'))
    assert "m-1" not in pic.presence.items


def test_delete_removes_the_item_and_is_delivered() -> None:
    pic = picture()
    alice, bob = pic.join("a"), pic.join("b")
    pic.send(alice, marker(pic.clock, "m-1"))
    pic.send(bob, delete(pic.clock, "m-1"))
    assert "m-1" not in pic.presence.items and pic.presence.refused == 0
    assert alice.types() == ["t-x-d-d"]


def test_delete_and_replace_from_outside_the_items_groups_are_refused() -> None:
    pic = picture()
    red, blue = pic.join("red", groups("Red")), pic.join("blue", groups("Blue"))
    pic.send(red, marker(pic.clock, "m-1"))
    pic.send(blue, delete(pic.clock, "m-1"))
    pic.send(blue, marker(pic.clock, "m-1"))
    assert pic.presence.items["m-1"].origin.session_id == "red"
    assert pic.presence.refused == 2
    assert not red.received, "neither the refused delete nor the replacement reaches the item's group"


def test_the_holder_may_change_its_item_after_its_groups_changed() -> None:
    holder = Origin(session_id="s", groups=groups("Red"), principal="alice")
    assert may_change(Origin(session_id="s", groups=groups("Blue")), holder)
    assert may_change(Origin(session_id="other", groups=groups("Blue"), principal="alice"), holder)
    assert not may_change(Origin(session_id="other", groups=groups("Blue")), holder)


def test_a_relays_device_reports_are_items_and_bind_its_contacts() -> None:
    pic = picture()
    link = pic.join("link", relay=True)
    pic.send(link, device_sa(pic.clock, "uid-R", "REMOTE"))
    assert "uid-R" in pic.presence.items and "uid-R" not in pic.presence.sa
    assert pic.directory.by_callsign("REMOTE") is link and pic.directory.uid_of("link") is None


def test_a_devices_own_report_supersedes_a_relayed_copy() -> None:
    clock = ManualClock()
    pic = picture(clock)
    presence: Presence = pic.presence
    gateway, device = pic.join("gw"), pic.join("dev")
    sa: CotEvent = device_sa(clock, "uid-D", "DEV")
    relayed, own = Envelope(sa, gateway.origin, 0), Envelope(sa, device.origin, 0)
    presence.bind(relayed, Claim.RELAYED)
    presence.observe(relayed)
    assert "uid-D" in presence.items and pic.directory.by_uid("uid-D") is gateway
    presence.bind(own, Claim.DEVICE)
    presence.observe(own)
    assert "uid-D" not in presence.items and presence.sa["uid-D"].origin.session_id == "dev"
    assert pic.directory.by_uid("uid-D") is device, "a local device wins over a relay"


def test_a_client_of_another_node_is_an_item_until_its_node_says_it_left() -> None:
    pic = picture()
    remote = Origin(session_id="node-b:r:tls-1", groups=ANON, node="node-b")
    sa = device_sa(pic.clock, "uid-B", "BOB")
    assert pic.presence.observe(Envelope(sa, remote, 0)), "it enters this node's picture"
    assert "uid-B" in pic.presence.items and pic.directory.by_uid("uid-B") is None
    pic.join("late")
    assert _snapshot_uids(pic, "late") == {"uid-B"}
    gone = disconnect_delete("uid-B", sa.type, pic.clock.now_ms())
    pic.presence.observe(Envelope(gone, remote, 0))
    assert "uid-B" not in pic.presence.items


def test_disown_drops_the_losing_principals_sa_and_items_and_names_its_sessions() -> None:
    pic = picture()
    mallory = pic.join("m", principal="mallory")
    pic.identify(mallory, "uid-X", "MALLORY")
    assert pic.presence.sa["uid-X"].origin.principal == "mallory"
    assert pic.presence.disown("uid-X", "alice") == ["m"]
    assert "uid-X" not in pic.presence.sa
    # With its SA gone, the session's departure publishes no disconnect notice for the uid.
    assert pic.presence.forget_session("m") is None
    # The holder's own report is kept.
    alice = pic.join("a", principal="alice")
    pic.identify(alice, "uid-Y", "ALICE")
    assert pic.presence.disown("uid-Y", "alice") == [] and "uid-Y" in pic.presence.sa
