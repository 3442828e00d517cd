"""A scripted exercise's feed: its tracks carry the exercise's marking, live feeds' tracks do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.config import FeedConfig
from rallypoint.errors import ConfigError
from rallypoint.model.track import Domain, IdentityKind
from rallypoint.protocol import XmlDecoder
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.wire import WireFormat, decode_datagram
from rallypoint.storage.sqlite.feeds import SqliteFeedRecords
from tests.unit.services.test_feeds_kept import node_service, started, stop
from tests.unit.services.test_feeds_service import obs, service


def test_tracks_of_an_exercise_feed_are_marked_and_read_back_as_exercise_traffic() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    view = feeds.add(FeedConfig(url="test+sim-adsb", exercise="valley-drill"))
    assert view.exercise == "valley-drill"
    assert feeds.add(FeedConfig(url="test+adsb")).exercise is None
    feeds.take("sim-adsb", [obs(clock, "sim-adsb", IdentityKind.ICAO, "abc001", Domain.AIR)])
    feeds.take("adsb", [obs(clock, "adsb", IdentityKind.ICAO, "abc002", Domain.AIR)])
    simulated, live = (e.event for e in accepted)
    assert (simulated.uid, simulated.exercise, simulated.opex) == ("ICAO-abc001", "valley-drill", "e-valley-drill")
    assert (live.uid, live.exercise, live.opex) == ("ICAO-abc002", None, None)
    assert b"__rallypoint_exercise" not in accepted[1].wire(WireFormat.XML)
    # The bytes say the same to any receiver and to the store: the parser finds the exercise in them.
    raw = accepted[0].wire(WireFormat.XML)
    assert b'opex="e-valley-drill"' in raw and b'<__rallypoint_exercise id="valley-drill"/>' in raw
    parsed = decode_datagram(raw, Limits(), XmlDecoder(Limits()))
    assert parsed is not None and parsed.exercise == "valley-drill"


def test_a_track_with_any_exercise_source_is_exercise_traffic() -> None:
    clock = ManualClock()
    feeds, accepted = service(clock)
    feeds.add(FeedConfig(url="test+adsb"))
    feeds.add(FeedConfig(url="test+sim", exercise="drill"))
    feeds.take("adsb", [obs(clock, "adsb", IdentityKind.ICAO, "abc003", Domain.AIR)])
    clock.advance(1.5)
    feeds.take("sim", [obs(clock, "sim", IdentityKind.ICAO, "abc003", Domain.AIR)])
    assert [(e.event.uid, e.event.exercise) for e in accepted] == [("ICAO-abc003", None), ("ICAO-abc003", "drill")]


@pytest.mark.parametrize("bad", ["none", "any", "two words", "x" * 65, ""])
def test_an_exercise_id_that_is_no_exercise_is_refused(bad: str) -> None:
    feeds, _ = service(ManualClock())
    with pytest.raises(ConfigError, match="feed exercise"):
        feeds.add(FeedConfig(url="test+sim", exercise=bad))
    assert feeds.list() == []


async def test_an_exercise_feed_is_not_kept_for_a_restart(tmp_path: Path) -> None:
    store = SqliteFeedRecords(tmp_path / "feeds.db")
    feeds = node_service(store)
    task = await started(feeds)
    view = await feeds.kept.add(FeedConfig(url="test+sim", exercise="drill"), "trainer")
    await feeds.kept.add(FeedConfig(url="test+harbour"), "trainer")
    assert (view.origin, view.exercise) == ("api", "drill")
    assert [r.name for r in await store.feeds("n1")] == ["harbour"]
    await feeds.kept.remove("sim")
    assert [v.name for v in feeds.list()] == ["harbour"]
    await stop(feeds, task)
