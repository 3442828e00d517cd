"""The hold of reports whose uid's cluster claim is undecided (``services/claim_hold.py``), without sockets.

``ClaimHold`` alone on passed-in times; then wired into the real routing core (``tests/support/picture``)
the way ``UidClaims`` wires it, so that a held report provably reaches no receiver until it is released.
"""

from __future__ import annotations

from rallypoint.routing.envelope import Envelope
from rallypoint.security.policy import Claim
from rallypoint.services.claim_hold import ClaimHold
from tests.support.picture import Picture, Receiver, device_sa, marker, picture

UID = "ANDROID-1"


def _live(session_id: str) -> bool:
    return True


def _report(pic: Picture, sender: Receiver, callsign: str, uid: str = UID) -> Envelope:
    return Envelope(device_sa(pic.clock, uid, callsign), sender.origin, pic.clock.now_ms())


def _held_picture(hold: ClaimHold, now: float = 0.0) -> Picture:
    """A routing core whose device uid claims start a hold, as ``UidClaims.submit`` does in a cluster."""
    pic = picture()
    pic.identity.on_claim(lambda uid, principal: hold.begin(uid, principal, now))
    pic.ingest.hold_reports(hold.holds, hold.keep)
    return pic


def test_reports_are_kept_in_order_and_released_in_order_when_the_claim_is_won() -> None:
    pic, hold = picture(), ClaimHold(hold_s=2.0)
    alice = pic.join("a", principal="alice")
    hold.begin(UID, "alice", now=10.0)
    first, second = _report(pic, alice, "A-1"), _report(pic, alice, "A-2")
    hold.keep(first, Claim.DEVICE)
    hold.keep(second, Claim.DEVICE)
    assert UID in hold.holds and hold.principal_of(UID) == "alice"
    assert hold.won(UID, _live) == [(first, Claim.DEVICE), (second, Claim.DEVICE)]
    assert UID not in hold.holds and hold.won(UID, _live) == []
    stats = hold.statistics()
    assert (stats.held, stats.released, stats.lost, stats.holding) == (2, 2, 0, 0)


def test_a_lost_claim_gives_its_reports_back_to_be_dropped_and_releases_nothing() -> None:
    pic, hold = picture(), ClaimHold()
    mallory = pic.join("m", principal="mallory")
    hold.begin(UID, "mallory", now=0.0)
    report = _report(pic, mallory, "M-1")
    hold.keep(report, Claim.DEVICE)
    assert hold.lose(UID) == [(report, Claim.DEVICE)]
    assert UID not in hold.holds and hold.lose(UID) == [] and hold.won(UID, _live) == []
    assert (hold.statistics().lost, hold.statistics().released) == (1, 0)


def test_an_undecided_claim_is_released_when_its_time_is_up_and_not_before() -> None:
    pic, hold = picture(), ClaimHold(hold_s=2.0)
    alice, bob = pic.join("a", principal="alice"), pic.join("b", principal="bob")
    hold.begin(UID, "alice", now=100.0)
    hold.begin("ANDROID-2", "bob", now=101.0)
    first, other = _report(pic, alice, "A-1"), _report(pic, bob, "B-1", uid="ANDROID-2")
    hold.keep(first, Claim.DEVICE)
    hold.keep(other, Claim.DEVICE)
    assert hold.next_deadline() == 102.0
    assert list(hold.expire(101.9, _live)) == []
    assert list(hold.expire(102.0, _live)) == [(UID, [(first, Claim.DEVICE)])]
    assert hold.next_deadline() == 103.0 and "ANDROID-2" in hold.holds
    assert list(hold.expire(200.0, _live)) == [("ANDROID-2", [(other, Claim.DEVICE)])]
    assert hold.next_deadline() is None and hold.statistics().expired == 2


def test_one_uid_keeps_at_most_max_per_uid_reports_dropping_the_oldest() -> None:
    pic, hold = picture(), ClaimHold(max_per_uid=3)
    alice = pic.join("a", principal="alice")
    hold.begin(UID, "alice", now=0.0)
    reports = [_report(pic, alice, f"A-{i}") for i in range(5)]
    for report in reports:
        hold.keep(report, Claim.DEVICE)
    assert [e for e, _ in hold.won(UID, _live)] == reports[2:]
    assert hold.statistics().overflowed == 2


def test_past_max_uids_the_oldest_hold_is_released_at_once() -> None:
    pic, hold = picture(), ClaimHold(max_uids=2, hold_s=60.0)
    alice = pic.join("a", principal="alice")
    for i in range(3):
        hold.begin(f"U-{i}", "alice", now=float(i))
        hold.keep(_report(pic, alice, f"A-{i}", uid=f"U-{i}"), Claim.DEVICE)
    assert hold.next_deadline() == float("-inf")
    released = list(hold.expire(3.0, _live))
    assert [uid for uid, _ in released] == ["U-0"] and len(released[0][1]) == 1
    assert set(hold.holds) == {"U-1", "U-2"} and hold.next_deadline() == 61.0


def test_a_claim_given_up_is_released_at_once() -> None:
    hold = ClaimHold(hold_s=60.0)
    hold.begin(UID, "alice", now=0.0)
    hold.give_up("not-held")
    hold.give_up(UID)
    assert hold.next_deadline() == float("-inf")
    assert list(hold.expire(0.0, _live)) == [(UID, [])] and not hold.holds


def test_reports_of_a_session_that_ended_before_the_decision_are_never_released() -> None:
    pic, hold = picture(), ClaimHold()
    alice = pic.join("a", principal="alice")
    hold.begin(UID, "alice", now=0.0)
    hold.keep(_report(pic, alice, "A-1"), Claim.DEVICE)
    assert hold.won(UID, lambda session_id: session_id != "a") == []
    assert hold.statistics().abandoned == 1


def test_ingest_holds_a_claimed_uid_so_no_receiver_gets_it_until_the_claim_is_won() -> None:
    hold = ClaimHold()
    pic = _held_picture(hold)
    alice, bob = pic.join("a", principal="alice"), pic.join("b", principal="bob")
    pic.identify(alice, UID, "ALICE-1")
    pic.identify(alice, UID, "ALICE-2")
    pic.send(alice, marker(pic.clock, "m-1"))  # another uid: not held
    assert bob.uids() == ["m-1"] and [e.event.uid for e in pic.published] == ["m-1"]
    assert pic.directory.by_callsign("ALICE-1") is None and UID not in pic.presence.sa
    for envelope, claim in hold.won(UID, lambda session_id: pic.directory.get(session_id) is not None):
        pic.ingest.admit(envelope, claim)
    assert [e.event.detail.callsign for e in bob.received if e.event.uid == UID] == ["ALICE-1", "ALICE-2"]
    assert pic.directory.uid_of("a") == UID and pic.presence.sa[UID].event.detail.callsign == "ALICE-2"
    pic.identify(alice, UID, "ALICE-3")  # decided: no longer held
    assert bob.received[-1].event.detail.callsign == "ALICE-3"


def test_ingest_never_delivers_the_reports_of_a_lost_claim() -> None:
    hold = ClaimHold()
    pic = _held_picture(hold)
    mallory, bob = pic.join("m", principal="mallory"), pic.join("b", principal="bob")
    pic.identify(mallory, UID, "MALLORY-1")
    assert [e.event.detail.callsign for e, _ in hold.lose(UID)] == ["MALLORY-1"]
    assert not bob.received and not pic.published and UID not in pic.presence.sa


def test_a_lone_node_holds_nothing() -> None:
    pic = picture()
    alice, bob = pic.join("a", principal="alice"), pic.join("b")
    pic.identify(alice, UID, "ALICE")
    assert [e.event.detail.callsign for e in bob.received] == ["ALICE"]
