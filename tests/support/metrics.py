"""Reading the real server's Prometheus metrics in tests."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import ServerProcess


def metric_value(server: ServerProcess, sample: str, **labels: str) -> float:
    """The value of one sample (e.g. ``rallypoint_drops_total`` with ``reason="outbox"``); 0 when absent."""
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0
