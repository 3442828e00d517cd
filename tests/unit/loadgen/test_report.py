"""Percentile math, latency sampling and the JSON report shape."""

from __future__ import annotations

import json

import pytest

from rallypoint.loadgen.report import (
    BenchReport,
    LatencySampler,
    ServerStats,
    percentile,
    ratio,
    render_rows,
    summarize_latency,
    to_json,
)


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1


def test_percentile_of_small_sets() -> None:
    assert percentile([7], 99) == 7
    assert percentile([1, 2], 50) == 1
    assert percentile([1, 2], 51) == 2


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_summarize_latency_converts_microseconds_to_ms() -> None:
    summary = summarize_latency([4000, 1000, 3000, 2000])
    assert summary.samples == 4
    assert summary.p50_ms == 2.0
    assert summary.max_ms == 4.0


def test_summarize_latency_without_samples() -> None:
    summary = summarize_latency([])
    assert summary.samples == 0
    assert summary.p50_ms is None


def test_sampler_keeps_everything_below_cap() -> None:
    sampler = LatencySampler(cap=100)
    for i in range(50):
        sampler.add(i)
    assert list(sampler.samples) == list(range(50))


def test_sampler_thins_evenly_over_time_when_full() -> None:
    sampler = LatencySampler(cap=8)
    for i in range(1000):
        sampler.add(i)
    kept = list(sampler.samples)
    assert len(kept) < 8
    # Samples from the end of the run survive, not only the first ones.
    assert max(kept) > 700
    assert kept == sorted(kept)
    assert sampler.offered == 1000


def test_sampler_clear_starts_over() -> None:
    sampler = LatencySampler(cap=4)
    for i in range(100):
        sampler.add(i)
    sampler.clear()
    sampler.add(5)
    assert list(sampler.samples) == [5]


def test_ratio() -> None:
    assert ratio(50, 100) == 0.5
    assert ratio(0, 0) == 0.0


def _report(server: ServerStats | None = None) -> BenchReport:
    return BenchReport(
        mode="fanout",
        proto="xml",
        host="127.0.0.1",
        port=8087,
        tls=False,
        clients=3,
        receivers=3,
        rate_hz=1.0,
        duration_s=2.0,
        processes=1,
        window_s=2.0,
        drain_s=0.1,
        connected=3,
        connect_failures=0,
        warmup_missing=0,
        sent=6,
        sent_per_s=3.0,
        expected=12,
        delivered=12,
        delivered_per_s=6.0,
        delivery_ratio=1.0,
        latency=summarize_latency([1000, 2000]),
        errors=0,
        disconnects=0,
        tool_cpu_percent=[3.0],
        server=server,
    )


def test_report_json_shape() -> None:
    data = json.loads(to_json(_report(ServerStats(1, 4, 10.0, 20.0, 30.0, 31.0))))
    for key in (
        "sent",
        "sent_per_s",
        "expected",
        "delivered",
        "delivered_per_s",
        "delivery_ratio",
        "errors",
        "disconnects",
    ):
        assert isinstance(data[key], int | float), key
    assert set(data["latency"]) == {"samples", "p50_ms", "p95_ms", "p99_ms", "max_ms"}
    assert data["server"]["rss_mb_max"] == 31.0
    assert data["server"]["cpu_percent_avg"] == 10.0


def test_report_json_without_server() -> None:
    assert json.loads(to_json(_report()))["server"] is None


def test_rows_mention_server_only_when_sampled() -> None:
    assert not any("server" in label for label, _ in render_rows(_report()))
    rows = dict(render_rows(_report(ServerStats(1, 4, 10.0, 20.0, 30.0, 31.0))))
    assert any("CPU" in label for label in rows)


def test_rows_say_what_was_counted_and_why_connections_failed() -> None:
    import msgspec

    plain = dict(render_rows(msgspec.structs.replace(_report(), counted_uids="RPBENCH-ab12cd-", other_events=1234)))
    assert plain["counted"] == (
        "only this run's own events (uids RPBENCH-ab12cd-*); 1,234 other events received, not counted"
    )
    assert plain["connected"] == "3 (failed 0)"
    assert "failures" not in plain and "stopped by" not in plain
    closed = msgspec.structs.replace(
        _report(), connected=10, connect_failures=40, closed_by_server=40,
        failure_reasons={"closed by the server right after connecting": 40}, limit="max_connections_per_identity",
    )  # fmt: skip
    rows = dict(render_rows(closed))
    assert rows["connected"] == "10 (failed 40, of which 40 closed by the server after connecting)"
    assert rows["failures"] == "40 closed by the server right after connecting"
    assert rows["stopped by"] == "max_connections_per_identity"
