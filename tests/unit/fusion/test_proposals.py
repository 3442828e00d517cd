"""Two identities never merge silently: a proposal is recorded and merged only when accepted."""

from __future__ import annotations

import pytest

from rallypoint.fusion.tracker import Tracker
from rallypoint.model.track import Domain, Identity, IdentityKind, TrackReport, TrackStatus
from tests.unit.fusion.scenes import at, obs

TAK = Identity(IdentityKind.TAK, "ANDROID-0123456789abcdef")
APRS = Identity(IdentityKind.APRS, "N0CALL-9")


def _drive_together(tracker: Tracker, start: int, end: int) -> list[TrackReport]:
    """A TAK user's phone and the APRS tracker in the same vehicle, driving north at 15 m/s."""
    out: list[TrackReport] = []
    for t in range(start, end, 5):
        out += tracker.update(at(t), obs(t, 0, 15.0 * t, identity=TAK, source="tak", domain=Domain.GROUND))
        out += tracker.update(
            at(t + 1), obs(t + 1, 8, 15.0 * (t + 1), identity=APRS, source="aprs-is", domain=Domain.GROUND)
        )
    return out


def _uids(tracker: Tracker) -> set[str]:
    return {r.uid for r in tracker.tracks()}


def test_identities_moving_together_are_proposed_not_merged() -> None:
    tracker = Tracker()
    _drive_together(tracker, 0, 60)
    (proposal,) = tracker.proposals()
    assert (proposal.primary, proposal.secondary) == ("TAK-ANDROID-0123456789abcdef", "APRS-N0CALL-9")
    assert proposal.primary_identity == TAK and proposal.secondary_identity == APRS
    assert proposal.updates >= 5 and proposal.distance_m < 50
    assert proposal.since == at(0)
    # Nothing merged: both tracks are still there, and keep being reported on their own.
    assert _uids(tracker) == {"TAK-ANDROID-0123456789abcdef", "APRS-N0CALL-9"}
    _drive_together(tracker, 60, 120)
    assert _uids(tracker) == {"TAK-ANDROID-0123456789abcdef", "APRS-N0CALL-9"}
    assert len(tracker.proposals()) == 1  # proposed once, not again on every check
    assert tracker.statistics()["proposals"] == 1


def test_accepting_merges_the_secondary_into_the_primary() -> None:
    tracker = Tracker()
    _drive_together(tracker, 0, 60)
    (proposal,) = tracker.proposals()
    reports = tracker.accept_proposal(proposal.id)
    assert [(r.uid, r.status) for r in reports] == [
        ("APRS-N0CALL-9", TrackStatus.DELETED),
        ("TAK-ANDROID-0123456789abcdef", TrackStatus.CONFIRMED),
    ]
    assert reports[1].sources == ("aprs-is", "tak") and reports[1].fused
    assert tracker.proposals() == []
    # From now on the APRS tracker's reports update the TAK user's track.
    (after,) = tracker.update(at(61), obs(61, 8, 15.0 * 61, identity=APRS, source="aprs-is", domain=Domain.GROUND))
    assert after.uid == "TAK-ANDROID-0123456789abcdef"
    assert after.identity == TAK
    assert _uids(tracker) == {"TAK-ANDROID-0123456789abcdef"}
    with pytest.raises(KeyError):
        tracker.accept_proposal(proposal.id)


def test_rejected_pair_is_never_proposed_again() -> None:
    tracker = Tracker()
    _drive_together(tracker, 0, 60)
    (proposal,) = tracker.proposals()
    tracker.reject_proposal(proposal.id)
    _drive_together(tracker, 60, 200)
    assert tracker.proposals() == []
    assert _uids(tracker) == {"TAK-ANDROID-0123456789abcdef", "APRS-N0CALL-9"}
    assert tracker.statistics()["proposals_rejected"] == 1


def test_same_kind_identities_are_never_proposed() -> None:
    tracker = Tracker()
    a = Identity(IdentityKind.MMSI, "227006760")
    b = Identity(IdentityKind.MMSI, "227006761")
    for t in range(0, 120, 5):
        tracker.update(at(t), obs(t, 0, 5.0 * t, identity=a))
        tracker.update(at(t + 1), obs(t + 1, 30, 5.0 * (t + 1), identity=b))
    assert tracker.proposals() == []


def test_identities_that_part_are_not_proposed() -> None:
    tracker = Tracker()
    for t in range(0, 60, 5):
        tracker.update(at(t), obs(t, 0, 15.0 * t, identity=TAK, source="tak", domain=Domain.GROUND))
        # Same place at the start, but heading east: the velocities differ, so never together.
        tracker.update(at(t + 1), obs(t + 1, 15.0 * t, 0, identity=APRS, source="aprs-is", domain=Domain.GROUND))
    assert tracker.proposals() == []


def test_a_merge_can_be_restored_after_a_restart() -> None:
    tracker = Tracker()
    assert tracker.merge_identities(TAK, APRS) == []
    (report,) = tracker.update(at(0), obs(0, 0, 0, identity=APRS, source="aprs-is", domain=Domain.GROUND))
    assert report.uid == "TAK-ANDROID-0123456789abcdef" and report.identity == TAK
