"""Merges in the feed service: absorbed tracks are deleted on maps, TAK users' positions lead to
proposals an operator decides, accepted merges are kept and applied again after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock, ms_to_datetime
from rallypoint.config import FeedConfig
from rallypoint.fusion.tracker import Tracker
from rallypoint.model.cot import Point
from rallypoint.model.cot_type import DELETE
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.feeds import FeedError, FeedService
from rallypoint.storage.base.feeds import MergeRecord
from rallypoint.storage.sqlite.feeds import SqliteFeedRecords
from tests.unit.fusion.scenes import latlon
from tests.unit.services.test_feeds_service import opener

USER = "ANDROID-0123456789abcdef"


def service(clock: ManualClock, store: SqliteFeedRecords | None = None) -> tuple[FeedService, list[Envelope]]:
    accepted: list[Envelope] = []
    feeds = FeedService(clock=clock, accept=accepted.append, tracker=Tracker(), opener=opener, store=store)
    feeds.add(FeedConfig(url="test+aprs"), origin="config")
    return feeds, accepted


def user_position(clock: ManualClock, north: float) -> Envelope:
    """What a TAK user's client publishes: its own position with a callsign."""
    now = clock.now_ms()
    lat, lon = latlon(0.0, north)
    event = make_event(uid=USER, type="a-f-G-U-C", how="m-g", time=now, start=now, stale=now + 60_000,
                       point=Point(lat, lon, 10.0, 8.0, 9_999_999.0),
                       detail_xml=b'<contact callsign="WOLF"/><track course="0" speed="15"/>')
    return Envelope(event, Origin(session_id="s-1"), now)


def aprs_position(clock: ManualClock, north: float) -> Observation:
    now = ms_to_datetime(clock.now_ms())
    lat, lon = latlon(8.0, north)
    return Observation(source="aprs", received_at=now, source_time=now, lat=lat, lon=lon, domain=Domain.GROUND,
                       identity=Identity(kind=IdentityKind.APRS, value="N0CALL-9"), category="/>")


def drive(feeds: FeedService, clock: ManualClock, seconds: int) -> None:
    """The user and the APRS tracker in the same vehicle, north at 15 m/s, a report each every 5 s."""
    for _ in range(0, seconds, 5):
        clock.advance(4.0)
        north = 15.0 * (clock.now_ms() - 1_700_000_000_000) / 1000
        feeds.observe(user_position(clock, north), Audience())
        feeds.fold_contacts()
        clock.advance(1.0)
        feeds.take("aprs", [aprs_position(clock, north + 15.0)])


async def test_a_tracker_moving_with_a_tak_user_is_proposed_and_merged_when_accepted(tmp_path: Path) -> None:
    clock = ManualClock()
    store = SqliteFeedRecords(tmp_path / "feeds.db")
    feeds, accepted = service(clock, store)
    drive(feeds, clock, 60)
    # The user's own track is never said (the client's events already are); the APRS tracker is.
    assert {e.event.uid for e in accepted} == {"APRS-N0CALL-9"}
    (proposal,) = feeds.merges.proposals()
    assert (proposal.primary, proposal.secondary) == (f"TAK-{USER}", "APRS-N0CALL-9")
    with pytest.raises(FeedError):
        await feeds.merges.accept("mp-999", "alice")
    accepted.clear()
    await feeds.merges.accept(proposal.id, "alice")
    (removal,) = accepted
    assert removal.event.type == DELETE and b'uid="APRS-N0CALL-9"' in removal.event.detail.xml
    assert feeds.merges.proposals() == []
    # From now on the tracker's reports update the user's track, which is not said: one object on maps.
    accepted.clear()
    drive(feeds, clock, 20)
    assert accepted == []
    assert [(r.primary_value, r.secondary_value, r.operator) for r in await store.merges()] == [
        (USER, "N0CALL-9", "alice")]
    await store.close()


async def test_stored_merges_are_applied_again_after_a_restart(tmp_path: Path) -> None:
    store = SqliteFeedRecords(tmp_path / "feeds.db")
    await store.add_merge(MergeRecord(primary_kind="tak", primary_value=USER, secondary_kind="aprs",
                                      secondary_value="N0CALL-9", accepted_ms=1, operator="alice"))
    await store.add_merge(MergeRecord(primary_kind="nonsense", primary_value="x", secondary_kind="aprs",
                                      secondary_value="Y", accepted_ms=2, operator="alice"))
    clock = ManualClock()
    feeds, accepted = service(clock, store)
    await feeds.merges.load()
    drive(feeds, clock, 60)
    assert accepted == [] and feeds.merges.proposals() == []
    await feeds.merges.close()


def test_a_rejected_proposal_is_not_made_again() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    drive(feeds, clock, 60)
    (proposal,) = feeds.merges.proposals()
    feeds.merges.reject(proposal.id, "alice")
    drive(feeds, clock, 60)
    assert feeds.merges.proposals() == []
    assert all(e.event.type != DELETE for e in accepted)


def test_an_identity_less_track_that_joins_a_vessel_is_deleted_on_maps() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    feeds.add(FeedConfig(url="test+radar"))
    feeds.add(FeedConfig(url="test+ais"))
    vessel = Identity(kind=IdentityKind.MMSI, value="244000001")

    def at(east: float, identity: Identity | None, source: str) -> Observation:
        now = ms_to_datetime(clock.now_ms())
        lat, lon = latlon(east, 0.0)
        return Observation(source=source, received_at=now, source_time=now, lat=lat, lon=lon, domain=Domain.SEA,
                           identity=identity, speed_mps=5.0 if identity else None,
                           course_deg=90.0 if identity else None, ce_m=10.0 if identity else 30.0)

    # The radar sees the vessel first: a track without identity, confirmed and said.
    for step in range(6):
        feeds.take("radar", [at(5.0 * step * 4, None, "radar")])
        clock.advance(4.0)
    said = {e.event.uid for e in accepted}
    (anonymous,) = said
    # Then its AIS reports arrive; the radar's track joins the vessel's and leaves the maps at once.
    for step in range(6, 14):
        feeds.take("ais", [at(5.0 * step * 4, vessel, "ais")])
        feeds.take("radar", [at(5.0 * step * 4 + 3.0, None, "radar")])
        clock.advance(4.0)
    removals = [e for e in accepted if e.event.type == DELETE]
    assert [r.event.uid for r in removals] == [f"{anonymous}.delete"]
    assert f'uid="{anonymous}"'.encode() in removals[0].event.detail.xml
    assert "MMSI-244000001" in {e.event.uid for e in accepted}


def test_stale_tracks_are_not_deleted_on_maps() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    feeds.take("aprs", [aprs_position(clock, 0.0)])
    clock.advance(4000.0)
    feeds.publish(feeds._tracker.expire(ms_to_datetime(clock.now_ms())))  # type: ignore[attr-defined]
    assert [e.event.type for e in accepted] == ["a-n-G-E-V"]


def test_a_merged_tracker_shows_the_user_while_the_users_client_is_silent() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    drive(feeds, clock, 60)
    (proposal,) = feeds.merges.proposals()
    asyncio.run(feeds.merges.accept(proposal.id, "alice"))
    accepted.clear()
    # The phone goes quiet; the APRS tracker goes on reporting. Once the user's reports are older than
    # the ground stale time, the tracker's positions are said as the user's track.
    north = 15.0 * (clock.now_ms() - 1_700_000_000_000) / 1000
    for step in range(0, 1000, 20):
        clock.advance(20.0)
        feeds.take("aprs", [aprs_position(clock, north + 15.0 * (step + 20))])
    said = {e.event.uid for e in accepted}
    assert said == {f"TAK-{USER}"}
    assert b'callsign="WOLF"' in accepted[-1].event.raw
    # The phone is back: its own events show the user, and the stand-in leaves the map.
    accepted.clear()
    clock.advance(1.0)
    north = 15.0 * (clock.now_ms() - 1_700_000_000_000) / 1000
    feeds.observe(user_position(clock, north), Audience())
    feeds.fold_contacts()
    (removal,) = accepted
    assert removal.event.type == DELETE and f'uid="TAK-{USER}"'.encode() in removal.event.detail.xml
