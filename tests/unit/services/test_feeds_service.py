"""The feed service with the real fusion tracker: observations in, CoT through accept out."""

from __future__ import annotations

import asyncio
from datetime import datetime

import msgspec
import pytest

from rallypoint.clock import ManualClock, ms_to_datetime
from rallypoint.config import FeedConfig
from rallypoint.errors import ConfigError, RemoteProtocolError
from rallypoint.fusion.tracker import Tracker
from rallypoint.model.cot_type import Priority
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation, TrackReport, TrackStatus
from rallypoint.protocol.wire import WireFormat
from rallypoint.routing.envelope import Envelope
from rallypoint.services.feed_types import FeedInfo, FeedRunner, FeedStatistics, LayerItem, LayerSink, ObservationSink
from rallypoint.services.feeds import FeedError, FeedService
from rallypoint.services.feeds_cot import cot_type, how_of, track_event, vessel_type


class StillRunner:
    """A feed runner that carries nothing (the service's bookkeeping is under test, not a transport)."""

    def __init__(self) -> None:
        self.paused = False
        self.started = asyncio.Event()

    async def run(self) -> None:
        self.started.set()
        await asyncio.Event().wait()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def statistics(self) -> FeedStatistics:
        return FeedStatistics(paused=self.paused)


def opener(config: FeedConfig, sink: ObservationSink, layers: LayerSink) -> tuple[FeedInfo, FeedRunner]:
    if not config.url.startswith("test+"):
        raise ConfigError(f"feed URL {config.url!r}: unknown")
    name = config.name or config.url.removeprefix("test+")
    return FeedInfo(name=name, url=config.url, format="test", transport="tcp", groups=config.groups,
                    stale_s=config.stale_s, quality_m=config.quality), StillRunner()


def service(clock: ManualClock) -> tuple[FeedService, list[Envelope]]:
    accepted: list[Envelope] = []
    feeds = FeedService(clock=clock, accept=accepted.append, tracker=Tracker(), opener=opener)
    return feeds, accepted


def obs(
    clock: ManualClock, source: str, kind: IdentityKind, value: str, domain: Domain, **extra: object
) -> Observation:
    now = ms_to_datetime(clock.now_ms())
    return Observation(source=source, received_at=now, source_time=now, lat=51.9, lon=4.1, domain=domain,
                       identity=Identity(kind=kind, value=value), **extra)  # type: ignore[arg-type]


def test_vessel_observation_becomes_bulk_cot_for_anon_readers() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    feeds.add(FeedConfig(url="test+ais"), origin="config")
    feeds.take("ais", [obs(clock, "ais", IdentityKind.MMSI, "244123456", Domain.SEA, name="NORDIC STAR",
                           category="70", course_deg=90.0, speed_mps=5.0, ce_m=10.0)])
    [envelope] = accepted
    event = envelope.event
    assert (event.uid, event.type, event.how) == ("MMSI-244123456", "a-n-S-X-M-C", "m-g")
    assert envelope.priority is Priority.BULK
    assert envelope.origin.groups == frozenset({"__ANON__"})
    xml = envelope.wire(WireFormat.XML)
    assert b'callsign="NORDIC STAR"' in xml
    assert b'<__rallypoint_sources fused="false" status="confirmed" identity="mmsi:244123456">' in xml
    assert b'<source name="ais"/>' in xml and b'<track course="90.0"' in xml
    # Stale: ten minutes for vessels by default.
    assert event.stale - event.time == 600_000


def test_feed_settings_apply_quality_stale_and_groups() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    feeds.add(FeedConfig(url="test+sbs", groups=("Ops",), stale_s=20, quality=75.0))
    feeds.take("sbs", [obs(clock, "sbs", IdentityKind.ICAO, "4ca2d6", Domain.AIR, alt_m=3000.0)])
    [envelope] = accepted
    assert envelope.origin.groups == frozenset({"Ops"})
    assert envelope.event.type == "a-n-A-C-F" and envelope.event.stale - envelope.event.time == 20_000
    assert envelope.event.point.ce > 1.0  # the feed's quality stood in for the missing accuracy


def test_a_track_of_feeds_sharing_no_group_is_withheld() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    feeds.add(FeedConfig(url="test+a", groups=("Red",)))
    feeds.add(FeedConfig(url="test+b", groups=("Blue",)))
    feeds.take("a", [obs(clock, "a", IdentityKind.ICAO, "abc123", Domain.AIR)])
    clock.advance(1.0)
    feeds.take("b", [obs(clock, "b", IdentityKind.ICAO, "abc123", Domain.AIR)])
    assert len(accepted) == 1 and feeds.withheld == 1


def test_add_pause_resume_remove_and_their_errors() -> None:
    clock = ManualClock()
    feeds, _ = service(clock)
    view = feeds.add(FeedConfig(url="test+one", groups=("A",)))
    assert (view.name, view.origin, view.groups, view.paused) == ("one", "api", ["A"], False)
    with pytest.raises(FeedError) as exists:
        feeds.add(FeedConfig(url="test+one"))
    assert exists.value.reason == "exists"
    with pytest.raises(ConfigError):
        feeds.add(FeedConfig(url="bogus"))
    assert feeds.pause("one").paused and not feeds.resume("one").paused
    assert [v.name for v in feeds.list()] == ["one"]
    feeds.remove("one")
    assert feeds.list() == []
    with pytest.raises(FeedError) as missing:
        feeds.pause("one")
    assert missing.value.reason == "not_found"


async def test_run_starts_configured_and_added_feeds_and_close_stops_them() -> None:
    clock = ManualClock()
    feeds, _ = service(clock)
    feeds.add(FeedConfig(url="test+first"), origin="config")
    first = feeds._feeds["first"].runner
    task = asyncio.create_task(feeds.run())
    await asyncio.wait_for(first.started.wait(), 5)  # type: ignore[attr-defined]
    feeds.add(FeedConfig(url="test+second"))
    await asyncio.wait_for(feeds._feeds["second"].runner.started.wait(), 5)  # type: ignore[attr-defined]
    await feeds.close()
    await asyncio.wait_for(task, 5)
    families = {f.name for f in feeds.metric_families()}
    assert {"rallypoint_feed_bytes", "rallypoint_feed_rejects", "rallypoint_feed_connected"} <= families


def report(**fields: object) -> TrackReport:
    base: dict[str, object] = dict(uid="u", time=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
                                   status=TrackStatus.CONFIRMED, domain=Domain.AIR, lat=1.0, lon=2.0)
    base.update(fields)
    return TrackReport(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"identity": Identity(kind=IdentityKind.ICAO, value="abc123")}, "a-n-A-C-F"),
        ({"identity": Identity(kind=IdentityKind.ICAO, value="abc123"), "category": "A7"}, "a-n-A-C-H"),
        ({"identity": Identity(kind=IdentityKind.ICAO, value="abc123"), "category": "A3"}, "a-n-A-C-F"),
        ({"domain": Domain.SEA, "identity": Identity(kind=IdentityKind.MMSI, value="1")}, "a-n-S-X"),
        ({"domain": Domain.SEA, "identity": Identity(kind=IdentityKind.MMSI, value="1"), "category": "37"},
         "a-n-S-X-R"),
        ({"domain": Domain.SEA}, "a-u-S"),
        ({"domain": Domain.GROUND, "identity": Identity(kind=IdentityKind.APRS, value="N0CALL-9")}, "a-n-G"),
        ({"domain": Domain.GROUND, "identity": Identity(kind=IdentityKind.APRS, value="N0CALL-9"), "category": "/>"},
         "a-n-G-E-V"),
        ({"domain": Domain.GROUND, "identity": Identity(kind=IdentityKind.TAK, value="x"), "category": "a-f-G-U-C"},
         "a-f-G-U-C"),
        ({"domain": Domain.UNKNOWN}, "a-u-G"),
    ],
)
def test_cot_types(fields: dict[str, object], expected: str) -> None:
    assert cot_type(report(**fields)) == expected


def test_vessel_table_and_how() -> None:
    assert [vessel_type(t) for t in (30, 31, 52, 55, 60, 71, 84, 99)] == [
        "a-n-S-X-F", "a-n-S-X-M-T-O", "a-n-S-X-M-T", "a-n-S-X-L", "a-n-S-X-M-P", "a-n-S-X-M-C", "a-n-S-X-M-O",
        "a-n-S-X"]
    assert how_of(report(fused=True, identity=Identity(kind=IdentityKind.MMSI, value="1"))) == "m-f"
    assert how_of(report()) == "m-r"
    event = track_event(report(sources=("a", "b"), fused=True, ce_m=12.0, le_m=18.0, name='A&B "x"'),
                        stale_s=30, now_ms=1_767_225_600_000)
    assert (event.point.ce, event.point.le, event.how) == (12.0, 18.0, "m-f")



def test_layer_items_are_drawn_and_removed_when_they_leave_the_layer() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    feeds.add(FeedConfig(url="test+zones", groups=("Ops",)))
    ring = ((51.0, 4.0), (51.0, 4.1), (51.1, 4.1), (51.0, 4.0))
    feeds.take_layer("zones", [LayerItem(id="harbour", kind="polygon", points=ring, name="Harbour"),
                               LayerItem(id="buoy", kind="point", points=((51.05, 4.05),), name="Buoy 7"),
                               LayerItem(id="lane", kind="line", points=ring[:3])])
    by_uid = {e.event.uid: e for e in accepted}
    assert {uid: e.event.type for uid, e in by_uid.items()} == {
        "layer.zones.harbour": "u-d-f", "layer.zones.buoy": "b-m-p-s-m", "layer.zones.lane": "u-d-f"}
    harbour = by_uid["layer.zones.harbour"].wire(WireFormat.XML)
    assert harbour.count(b"<link point=") == 4 and b'callsign="Harbour"' in harbour
    assert by_uid["layer.zones.buoy"].origin.groups == frozenset({"Ops"})
    assert by_uid["layer.zones.buoy"].event.stale - by_uid["layer.zones.buoy"].event.time == 86_400_000
    accepted.clear()
    # The next document lost the buoy: it is deleted on maps; the others are drawn again.
    feeds.take_layer("zones", [LayerItem(id="harbour", kind="polygon", points=ring, name="Harbour"),
                               LayerItem(id="lane", kind="line", points=ring[:3])])
    deletes = [e.event for e in accepted if e.event.type == "t-x-d-d"]
    assert [d.detail.link_uid for d in deletes] == ["layer.zones.buoy"]
    accepted.clear()
    # Half the stale time later the layer is sent again, unchanged.
    clock.advance(12 * 3600 + 1)
    feeds._refresh_layers()
    assert sorted(e.event.uid for e in accepted) == ["layer.zones.harbour", "layer.zones.lane"]
    accepted.clear()
    feeds.remove("zones")
    assert sorted(e.event.detail.link_uid or "" for e in accepted) == ["layer.zones.harbour", "layer.zones.lane"]


def test_long_drawings_are_thinned() -> None:
    from rallypoint.services.feeds_layers import MAX_VERTICES, thinned

    points = [(float(i), 0.0) for i in range(5000)]
    kept = thinned(points)
    assert len(kept) == MAX_VERTICES and kept[0] == points[0] and kept[-1] == points[-1]


def test_track_events_read_back_as_the_parser_would_see_them() -> None:
    from rallypoint.protocol import XmlDecoder
    from rallypoint.protocol.limits import Limits
    from rallypoint.protocol.wire import decode_datagram
    from rallypoint.services.feeds_cot import TrackCot

    writer = TrackCot()
    for r in (
        report(uid="MMSI-1", domain=Domain.SEA, identity=Identity(kind=IdentityKind.MMSI, value="1"), name='A&B "<x>"',
               course_deg=370.0, speed_mps=4.567, ce_m=12.0, le_m=18.0, alt_m=3.5, sources=("ais", "radar"),
               fused=True),
        report(uid="trk-1", sources=("radar",)),
    ):
        event = writer.event(r, stale_s=30, now_ms=1_767_225_600_123)
        parsed = decode_datagram(event.raw or b"", Limits(), XmlDecoder(Limits()))
        assert parsed is not None
        assert (parsed.uid, parsed.type, parsed.how, parsed.time, parsed.start, parsed.stale) == (
            event.uid, event.type, event.how, event.time, event.start, event.stale)
        assert parsed.point == event.point
        assert parsed.detail.callsign == event.detail.callsign
        assert (parsed.detail.speed, parsed.detail.course) == (event.detail.speed, event.detail.course)
    with pytest.raises(RemoteProtocolError):
        writer.event(report(name="bad\x01name"), stale_s=30, now_ms=1_767_225_600_000)


def test_a_track_is_said_at_most_once_a_second_and_its_latest_report_follows() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    feeds.add(FeedConfig(url="test+sbs"))
    feeds.take("sbs", [obs(clock, "sbs", IdentityKind.ICAO, "abc123", Domain.AIR)])
    for step in range(1, 4):  # three more reports within the second
        clock.advance(0.25)
        moved = msgspec.structs.replace(obs(clock, "sbs", IdentityKind.ICAO, "abc123", Domain.AIR),
                                        lat=51.9 + step * 0.001)
        feeds.take("sbs", [moved])
    assert len(accepted) == 1
    feeds.flush()
    assert len(accepted) == 1  # the interval has not passed yet
    clock.advance(0.25)
    feeds.flush()
    assert len(accepted) == 2 and accepted[-1].event.point.lat > 51.9  # the latest estimate, not the first
    feeds.flush()
    assert len(accepted) == 2


def test_a_vessel_keeps_its_ship_type_when_radar_plots_join_its_track() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    feeds.add(FeedConfig(url="test+ais"))
    feeds.add(FeedConfig(url="test+radar"))
    feeds.take("ais", [obs(clock, "ais", IdentityKind.MMSI, "244000001", Domain.SEA, category="70", ce_m=10.0)])
    clock.advance(1.0)
    now = ms_to_datetime(clock.now_ms())
    # An identity-less radar plot on the vessel, whose CoT type says only "unknown surface".
    plot = Observation(source="radar", received_at=now, source_time=now, lat=51.9, lon=4.1, domain=Domain.SEA,
                       category="a-u-S", ce_m=50.0)
    feeds.take("radar", [plot])
    assert [(e.event.uid, e.event.type, e.event.how) for e in accepted] == [
        ("MMSI-244000001", "a-n-S-X-M-C", "m-g"), ("MMSI-244000001", "a-n-S-X-M-C", "m-f")]
