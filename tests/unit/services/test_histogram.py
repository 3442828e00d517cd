"""The lock-free route histogram exports exactly what prometheus_client's Histogram would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from rallypoint.services.histogram import LoopHistogram
from rallypoint.services.metrics import ServerMetrics, _CallbackCollector

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
VALUES = [0.0, 0.00005, 0.0001, 0.00010001, 0.0003, 0.001, 0.02, 0.25, 0.9999, 1.0, 1.5, 30.0, 0.0001]


def _exported(observe_with_reference: bool) -> bytes:
    registry = CollectorRegistry()
    if observe_with_reference:
        reference = Histogram("rallypoint_route_seconds", "doc", buckets=BUCKETS, registry=registry)
        for value in VALUES:
            reference.observe(value)
    else:
        ours = LoopHistogram("rallypoint_route_seconds", "doc", BUCKETS)
        registry.register(_CallbackCollector(ours.collect))
        for value in VALUES:
            ours.observe(value)
    # prometheus_client's own histogram adds a _created sample; ours has no creation time.
    return b"\n".join(line for line in generate_latest(registry).splitlines() if b"_created" not in line)


def test_same_exposition_as_prometheus_client() -> None:
    assert _exported(False) == _exported(True)


def test_count_and_bucket_edges() -> None:
    hist = LoopHistogram("h", "doc", (0.5, 1.0))
    for value in (0.5, 0.50001, 1.0, 2.0):
        hist.observe(value)
    assert hist.count == 4
    (family,) = hist.collect()
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name == "h_bucket"}
    assert buckets == {"0.5": 1, "1.0": 3, "+Inf": 4}


@pytest.mark.parametrize("buckets", [(), (1.0, 1.0), (float("inf"),)])
def test_bad_buckets_are_refused(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="buckets"):
        LoopHistogram("h", "doc", buckets)


def test_server_metrics_export_route_seconds() -> None:
    metrics = ServerMetrics()
    metrics.route_seconds.observe(0.0002)
    text = generate_latest(metrics.registry).decode()
    assert 'rallypoint_route_seconds_bucket{le="0.00025"} 1.0' in text
    assert "rallypoint_route_seconds_count 1.0" in text
