"""The feed service on ``/metrics``: per-feed counters and gauges, track outcomes, live tracks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from rallypoint.services.feeds import FeedView


def feed_families(
    views: Sequence[FeedView], outcomes: Mapping[str, int], tracker: Mapping[str, int]
) -> Iterable[Metric]:
    """Metric families of the feeds ``views``, the track ``outcomes`` and the tracker's statistics."""
    counters = {
        "bytes": CounterMetricFamily("rallypoint_feed_bytes", "Bytes received per feed", labels=["feed"]),
        "observations": CounterMetricFamily(
            "rallypoint_feed_observations", "Observations decoded per feed", labels=["feed"]),
        "reconnects": CounterMetricFamily(
            "rallypoint_feed_reconnects", "Connections re-established per feed", labels=["feed"]),
    }
    rejects = CounterMetricFamily("rallypoint_feed_rejects", "Input skipped per feed and reason",
                                  labels=["feed", "reason"])
    dropped = CounterMetricFamily("rallypoint_feed_dropped", "Observations dropped per feed (overflow, paused)",
                                  labels=["feed", "reason"])
    connected = GaugeMetricFamily("rallypoint_feed_connected", "1 while the feed's source is reachable",
                                  labels=["feed"])
    paused = GaugeMetricFamily("rallypoint_feed_paused", "1 while the feed is paused", labels=["feed"])
    buffered = GaugeMetricFamily("rallypoint_feed_buffered", "Observations waiting for the tracker",
                                 labels=["feed"])
    for view in views:
        s = view.statistics
        counters["bytes"].add_metric([view.name], s.bytes)
        counters["observations"].add_metric([view.name], s.observations)
        counters["reconnects"].add_metric([view.name], s.reconnects)
        for reason, n in sorted(s.rejects.items()):
            rejects.add_metric([view.name, reason], n)
        dropped.add_metric([view.name, "overflow"], s.dropped_overflow)
        dropped.add_metric([view.name, "paused"], s.dropped_paused)
        connected.add_metric([view.name], 1.0 if s.connected else 0.0)
        paused.add_metric([view.name], 1.0 if s.paused else 0.0)
        buffered.add_metric([view.name], s.buffered)
    tracks = CounterMetricFamily("rallypoint_feed_tracks", "Track reports of feeds by outcome",
                                 labels=["outcome"])
    for outcome, n in outcomes.items():
        tracks.add_metric([outcome], n)
    live = GaugeMetricFamily("rallypoint_feed_tracks_live", "Tracks the fusion tracker holds now",
                             labels=["status"])
    live.add_metric(["confirmed"], tracker.get("tracks_confirmed", 0))
    live.add_metric(["tentative"], tracker.get("tracks_tentative", 0))
    yield from (*counters.values(), rejects, dropped, connected, paused, buffered, tracks, live)
