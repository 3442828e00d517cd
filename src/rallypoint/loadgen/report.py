"""Bench statistics: latency sampling, percentiles, the report struct and its renderings."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence

import msgspec

DEFAULT_SAMPLE_CAP = 1 << 20


class LatencySampler:
    """Keeps latency samples (µs) in bounded memory.

    When the buffer is full every other sample is dropped and from then on only every
    ``stride``-th offered sample is kept, so a long run is thinned evenly over time rather than
    truncated at its start.
    """

    __slots__ = ("_cap", "_seen", "_stride", "samples")

    def __init__(self, cap: int = DEFAULT_SAMPLE_CAP) -> None:
        if cap < 2:
            raise ValueError("cap must be at least 2")
        self._cap = cap
        self._stride = 1
        self._seen = 0
        self.samples = array("q")

    def add(self, latency_us: int) -> None:
        """Offer one sample."""
        self._seen += 1
        if self._seen % self._stride:
            return
        self.samples.append(latency_us)
        if len(self.samples) >= self._cap:
            self.samples = self.samples[::2]
            self._stride *= 2

    def clear(self) -> None:
        """Forget everything (start of the measured window)."""
        self._stride = 1
        self._seen = 0
        self.samples = array("q")

    @property
    def offered(self) -> int:
        """How many samples were offered since the last clear."""
        return self._seen


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (``pct`` in 0..100)."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0.0 <= pct <= 100.0:
        raise ValueError("pct must be within 0..100")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


class LatencySummary(msgspec.Struct, frozen=True):
    """Latency percentiles in milliseconds; ``None`` when nothing was sampled."""

    samples: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def summarize_latency(samples_us: Iterable[int]) -> LatencySummary:
    """Percentiles of latency samples given in microseconds."""
    ordered = sorted(samples_us)
    if not ordered:
        return LatencySummary(samples=0, p50_ms=None, p95_ms=None, p99_ms=None, max_ms=None)

    def ms(pct: float) -> float:
        return round(percentile(ordered, pct) / 1000.0, 3)

    return LatencySummary(samples=len(ordered), p50_ms=ms(50), p95_ms=ms(95), p99_ms=ms(99), max_ms=ms(100))


class ServerStats(msgspec.Struct, frozen=True):
    """Server process usage sampled while the load ran."""

    pid: int
    samples: int
    cpu_percent_avg: float | None
    cpu_percent_max: float | None
    rss_mb_avg: float | None
    rss_mb_max: float | None


class BenchReport(msgspec.Struct, frozen=True):
    """Everything one run measured; ``--json`` prints exactly this."""

    mode: str
    proto: str
    host: str
    port: int
    tls: bool
    clients: int
    receivers: int
    rate_hz: float
    duration_s: float
    processes: int
    window_s: float
    drain_s: float
    connected: int
    connect_failures: int
    warmup_missing: int
    sent: int
    sent_per_s: float
    expected: int
    delivered: int
    delivered_per_s: float
    delivery_ratio: float
    latency: LatencySummary
    errors: int
    disconnects: int
    # CPU of each bench worker over window + drain; a worker near 100 means the tool, not the
    # server, may be the limit: raise --processes.
    tool_cpu_percent: list[float]
    server: ServerStats | None
    # Only events whose uid starts with this prefix (this run's clients) count as delivered.
    counted_uids: str = ""
    # Events of anyone else (a demo, real clients) the receivers got and did not count.
    other_events: int = 0
    # Connections established, then ended by the server before the run finished (part of
    # connect_failures); failure_reasons groups every failed connection by what happened.
    closed_by_server: int = 0
    failure_reasons: dict[str, int] = msgspec.field(default_factory=dict)
    # The server limit that stopped them, when the server's metrics or the failure's shape tell.
    limit: str | None = None
    # With --target: every server of the run as host:port, clients dealt round-robin over them.
    targets: list[str] = msgspec.field(default_factory=list)


def ratio(delivered: int, expected: int) -> float:
    """Delivery ratio rounded to 4 places; 0.0 when nothing was expected."""
    return round(delivered / expected, 4) if expected else 0.0


def to_json(report: BenchReport) -> str:
    """One JSON object."""
    return msgspec.json.encode(report).decode()


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}{unit}" if isinstance(value, float) else f"{value:,}{unit}"


def render_rows(report: BenchReport) -> list[tuple[str, str]]:
    """(label, value) rows for the human-readable table."""
    lat = report.latency
    target = (", ".join(report.targets) or f"{report.host}:{report.port}") + (" (TLS)" if report.tls else "")
    shape = (
        f"{report.clients} clients x {report.rate_hz:g} Hz"
        if report.mode == "fanout"
        else f"1 sender -> {report.receivers} receivers"
    )
    rows = [
        ("target", target),
        ("scenario", f"{report.mode}, {report.proto}, {shape}, {report.duration_s:g} s"),
        ("processes", str(report.processes)),
        ("connected", _connected(report)),
        ("sent", f"{report.sent:,} ({report.sent_per_s:,.1f}/s)"),
        ("expected", f"{report.expected:,}"),
        ("delivered", f"{report.delivered:,} ({report.delivered_per_s:,.1f}/s)"),
        ("counted", _counted(report)),
        ("delivery ratio", f"{report.delivery_ratio:.4f}"),
        (
            "latency p50/p95/p99/max",
            " / ".join(_fmt(v) for v in (lat.p50_ms, lat.p95_ms, lat.p99_ms, lat.max_ms))
            + f" ms ({lat.samples:,} samples)",
        ),
        ("errors / disconnects", f"{report.errors} / {report.disconnects}"),
    ]
    if report.failure_reasons:
        reasons = sorted(report.failure_reasons.items(), key=lambda item: (-item[1], item[0]))
        rows.append(("failures", "; ".join(f"{count} {reason}" for reason, count in reasons)))
    if report.limit:
        rows.append(("stopped by", report.limit))
    rows.append(("bench worker CPU", ", ".join(f"{c:.0f}%" for c in report.tool_cpu_percent)))
    if report.warmup_missing:
        rows.append(("warm-up SAs missing", str(report.warmup_missing)))
    if report.server is not None:
        s = report.server
        rows.append(
            (
                f"server pid {s.pid} CPU avg/max",
                f"{_fmt(s.cpu_percent_avg, '%')} / {_fmt(s.cpu_percent_max, '%')}",
            )
        )
        rows.append(("server RSS avg/max", f"{_fmt(s.rss_mb_avg)} / {_fmt(s.rss_mb_max)} MB"))
    return rows


def _connected(report: BenchReport) -> str:
    text = f"{report.connected} (failed {report.connect_failures}"
    if report.closed_by_server:
        text += f", of which {report.closed_by_server} closed by the server after connecting"
    return text + ")"


def _counted(report: BenchReport) -> str:
    uids = f"{report.counted_uids}*" if report.counted_uids else "this run's uids"
    return f"only this run's own events (uids {uids}); {report.other_events:,} other events received, not counted"
