"""The ``rallypoint bench`` load tool: many CoT clients, counted deliveries, latency, server usage."""

from .report import BenchReport, LatencySummary, ServerStats
from .run import BenchError, run_bench
from .spec import BenchSpec, BenchSpecError

__all__ = [
    "BenchError",
    "BenchReport",
    "BenchSpec",
    "BenchSpecError",
    "LatencySummary",
    "ServerStats",
    "run_bench",
]
