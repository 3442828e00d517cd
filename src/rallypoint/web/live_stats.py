"""Statistics of the ``/api/live`` feeds and their Prometheus gauges and counters."""

from __future__ import annotations

import msgspec


class LiveStatistics(msgspec.Struct, frozen=True):
    """Feeds open now and what they did since start (feeds that closed included).

    ``offered`` envelopes were handed to feeds by delivery; ``sent`` messages were written;
    ``coalesced`` positions were replaced by a newer one of the same uid while queued; ``dropped``
    envelopes were lost to overflow or went stale while queued; ``closed_slow`` feeds were closed
    because their reader stopped taking data; ``closed_auth`` because credentials lapsed.
    """

    feeds: int
    queued: int
    offered: int
    sent: int
    coalesced: int
    dropped: int
    closed_slow: int
    closed_auth: int


def live_gauges(s: LiveStatistics) -> list[tuple[str, str, float]]:
    """For ``ServerMetrics.add_gauges``."""
    return [
        ("rallypoint_live_feeds", "Open /api/live feeds", float(s.feeds)),
        ("rallypoint_live_queued", "Envelopes waiting in /api/live feed queues", float(s.queued)),
    ]


def live_counters(s: LiveStatistics) -> list[tuple[str, str, float]]:
    """For ``ServerMetrics.add_counters``."""
    return [
        ("rallypoint_live_offered", "Envelopes handed to /api/live feeds", float(s.offered)),
        ("rallypoint_live_sent", "Messages written to /api/live feeds", float(s.sent)),
        ("rallypoint_live_coalesced", "Queued feed positions replaced by a newer one", float(s.coalesced)),
        ("rallypoint_live_dropped", "Feed envelopes dropped (queue overflow or stale)", float(s.dropped)),
        ("rallypoint_live_closed_slow", "Feeds closed because the browser stopped reading", float(s.closed_slow)),
        ("rallypoint_live_closed_auth", "Feeds closed because credentials lapsed", float(s.closed_auth)),
    ]
