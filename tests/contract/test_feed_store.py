"""FeedRecords contract: accepted merges kept in order, each pair once, on every backend."""

from __future__ import annotations

from rallypoint.storage.base.feeds import FeedRecords, MergeRecord


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
