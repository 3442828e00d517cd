"""The opt-in memory snapshot: off unless tracemalloc traces, then it names allocation sites."""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from collections.abc import Iterator

import pytest

from rallypoint.node import memtrace


@pytest.fixture
def tracing() -> Iterator[None]:
    tracemalloc.start(1)
    try:
        yield
    finally:
        tracemalloc.stop()


async def test_not_installed_without_tracing() -> None:
    assert not tracemalloc.is_tracing()
    assert memtrace.install(asyncio.get_running_loop()) is False


def test_snapshot_logs_rss_traced_total_and_top_sites(tracing: None, caplog: pytest.LogCaptureFixture) -> None:
    held = [bytearray(1024) for _ in range(2000)]  # one site holding about 2 MB
    with caplog.at_level(logging.INFO, logger=memtrace.__name__):
        memtrace.log_snapshot()
    (record,) = [r for r in caplog.records if r.getMessage() == "memory snapshot"]
    top = record.__dict__["top"]
    assert record.__dict__["traced_mb"] >= 2
    assert any("test_memtrace.py:" in site["site"] and site["blocks"] >= 2000 for site in top)
    assert record.__dict__["rss_mb"] > 0
    del held


def test_snapshot_without_tracing_says_how_to_enable(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=memtrace.__name__):
        memtrace.log_snapshot()
    assert "PYTHONTRACEMALLOC" in caplog.text
