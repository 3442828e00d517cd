"""FeedRecords contract: accepted merges kept in order, each pair once, on every backend."""

from __future__ import annotations

import msgspec

from rallypoint.storage.base.feeds import FeedRecord, FeedRecords, MergeRecord


def merge(secondary: str, *, at: int = 1000, operator: str = "alice") -> MergeRecord:
    return MergeRecord(primary_kind="tak", primary_value="ANDROID-1", secondary_kind="aprs",
                       secondary_value=secondary, accepted_ms=at, operator=operator)


async def test_merges_are_kept_in_the_order_they_were_accepted(feed_records: FeedRecords) -> None:
    assert await feed_records.merges() == []
    assert await feed_records.add_merge(merge("N0CALL-9", at=2000))
    assert await feed_records.add_merge(merge("N0CALL-1", at=1000, operator="bob"))
    assert await feed_records.merges() == [merge("N0CALL-9", at=2000), merge("N0CALL-1", at=1000, operator="bob")]


async def test_the_same_pair_accepted_twice_is_kept_once(feed_records: FeedRecords) -> None:
    assert await feed_records.add_merge(merge("N0CALL-9"))
    assert not await feed_records.add_merge(merge("N0CALL-9", at=5000, operator="bob"))
    assert await feed_records.merges() == [merge("N0CALL-9")]


async def test_odd_text_survives(feed_records: FeedRecords) -> None:
    odd = MergeRecord(primary_kind="tak", primary_value="uid with 'quotes' and ünïcode", secondary_kind="icao",
                      secondary_value="3c6444", accepted_ms=1, operator="o'brien")
    assert await feed_records.add_merge(odd)
    assert await feed_records.merges() == [odd]


def feed(name: str, *, node: str = "n1", groups: list[str] | None = None) -> FeedRecord:
    return FeedRecord(node=node, name=name, url=f"ais+udp://127.0.0.1:10110?name={name}", groups=groups or [],
                      stale_s=None, quality=25.0, added_ms=1000, operator="root")


async def test_feeds_are_kept_per_node_in_the_order_added(feed_records: FeedRecords) -> None:
    assert await feed_records.feeds("n1") == []
    assert await feed_records.add_feed(feed("harbour", groups=["Ops", "Blue"]))
    assert await feed_records.add_feed(feed("adsb"))
    assert await feed_records.add_feed(feed("harbour", node="n2"))
    assert await feed_records.feeds("n1") == [feed("harbour", groups=["Ops", "Blue"]), feed("adsb")]
    assert await feed_records.feeds("n2") == [feed("harbour", node="n2")]
    stale = msgspec.structs.replace(feed("gps"), stale_s=60.0, quality=None)
    assert await feed_records.add_feed(stale)
    assert (await feed_records.feeds("n1"))[-1] == stale


async def test_a_feed_name_is_kept_once_per_node_and_removed(feed_records: FeedRecords) -> None:
    assert await feed_records.add_feed(feed("harbour"))
    assert not await feed_records.add_feed(feed("harbour", groups=["Other"]))
    assert await feed_records.remove_feed("n1", "harbour")
    assert not await feed_records.remove_feed("n1", "harbour")
    assert await feed_records.feeds("n1") == []
