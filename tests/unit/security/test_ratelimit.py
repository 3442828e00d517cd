"""Rate limits for datagram sources: per address, bounded table."""

from __future__ import annotations

from rallypoint.security.ratelimit import DatagramRateLimiter


def test_each_source_has_its_own_burst_and_refills_over_time() -> None:
    limiter = DatagramRateLimiter(rate=2.0, burst=3)
    assert [limiter.allow("10.0.0.1", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("10.0.0.2", 0.0), "another source is not charged for the first one's flood"
    assert not limiter.allow("10.0.0.1", 0.1)
    assert limiter.allow("10.0.0.1", 0.6), "one token refills after 0.5 s at 2/s"


def test_table_is_bounded_and_evicts_least_recently_seen() -> None:
    limiter = DatagramRateLimiter(rate=1.0, burst=1, max_addresses=3)
    for i in range(10):
        limiter.allow(f"10.0.0.{i}", 0.0)
    assert len(limiter) == 3
    # 10.0.0.0 was evicted long ago, so it starts again with a full bucket.
    assert limiter.allow("10.0.0.0", 0.0)
    # 10.0.0.9 is still tracked and has spent its only token.
    assert not limiter.allow("10.0.0.9", 0.0)


def test_zero_rate_is_unlimited() -> None:
    limiter = DatagramRateLimiter(rate=0.0, burst=1)
    assert all(limiter.allow("10.0.0.1", 0.0) for _ in range(1000))
    assert len(limiter) == 0
