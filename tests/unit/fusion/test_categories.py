"""What refines a track's type (AIS ship type...) comes from the track's own identity only."""

from __future__ import annotations

import msgspec

from rallypoint.fusion.tracker import Tracker
from rallypoint.model.track import Domain, Identity, IdentityKind
from tests.unit.fusion.scenes import at, mmsi, obs


def test_radar_reports_joining_a_vessel_leave_its_ship_type() -> None:
    tracker = Tracker()
    vessel = mmsi()
    (first,) = tracker.update(at(0), msgspec.structs.replace(obs(0, 0, 0, identity=vessel), category="70"))
    assert first.category == "70"
    plot = msgspec.structs.replace(obs(2, 5, 0, source="radar", ce=50.0), category="a-u-S")
    (joined,) = tracker.update(at(2), plot)
    assert joined.uid == first.uid and joined.sources == ("ais", "radar")
    assert joined.category == "70"


def test_an_identity_less_track_takes_its_own_reports_category() -> None:
    tracker = Tracker()
    tracker.update(at(0), msgspec.structs.replace(obs(0, 0, 0, source="radar", ce=50.0), category="a-u-S"))
    (track,) = tracker.tracks()
    assert track.identity is None and track.category == "a-u-S"


def test_a_merged_in_tracker_does_not_change_the_primary_category() -> None:
    tracker = Tracker()
    tak = Identity(IdentityKind.TAK, "ANDROID-1")
    aprs = Identity(IdentityKind.APRS, "N0CALL-9")
    tracker.update(at(0), msgspec.structs.replace(
        obs(0, 0, 0, identity=tak, source="tak", domain=Domain.GROUND), category="a-f-G-U-C"))
    tracker.merge_identities(tak, aprs)
    (after,) = tracker.update(at(1), msgspec.structs.replace(
        obs(1, 3, 0, identity=aprs, source="aprs", domain=Domain.GROUND), category="/>"))
    assert after.uid == "TAK-ANDROID-1" and after.category == "a-f-G-U-C"
