"""Opt-in memory diagnostics: on SIGUSR2, log where the heap goes.

Off unless the process was started with Python's own ``PYTHONTRACEMALLOC=N`` (N frames per
allocation; tracing costs CPU and memory, so never by default). Then ``kill -USR2 <pid>`` logs one
``memory snapshot`` line with the process RSS, what tracemalloc sees in total and the largest
allocation sites, grouped by the innermost frame. What RSS holds beyond the traced total is memory
Python cannot see: OpenSSL's per-connection state and buffers, the C allocator's free but
unreturned pages (fragmentation), and the interpreter itself. On glibc the snapshot then calls
``malloc_trim(0)`` and logs RSS again: the difference is memory that was free but not returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import signal
import tracemalloc
from pathlib import Path

log = logging.getLogger(__name__)

TOP_SITES = 25
_MB = 1024 * 1024


def rss_bytes() -> int | None:
    """Resident set size of this process from ``/proc/self/status`` (None where there is no procfs)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def top_allocations(snapshot: tracemalloc.Snapshot, limit: int = TOP_SITES) -> list[dict[str, object]]:
    """The ``limit`` largest allocation sites of ``snapshot``: file:line, MB held, block count."""
    stats = snapshot.statistics("lineno")[:limit]
    return [
        {
            "site": f"{s.traceback[0].filename}:{s.traceback[0].lineno}",
            "mb": round(s.size / _MB, 2),
            "blocks": s.count,
        }
        for s in stats
    ]


def malloc_trim() -> bool:
    """Return free heap pages to the system (glibc only); False where there is no such call."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


def log_snapshot() -> None:
    """Log one ``memory snapshot`` line (needs tracemalloc to be tracing)."""
    if not tracemalloc.is_tracing():
        log.warning("memory snapshot needs PYTHONTRACEMALLOC=N at start")
        return
    current, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"))
    )
    rss = rss_bytes()
    trimmed = rss_bytes() if malloc_trim() else None
    log.info(
        "memory snapshot",
        extra={
            "rss_mb": round(rss / _MB, 1) if rss is not None else None,
            "rss_after_trim_mb": round(trimmed / _MB, 1) if trimmed is not None else None,
            "traced_mb": round(current / _MB, 1),
            "traced_peak_mb": round(peak / _MB, 1),
            "top": top_allocations(snapshot),
        },
    )


def install(loop: asyncio.AbstractEventLoop) -> bool:
    """Log a snapshot on SIGUSR2 when tracemalloc is tracing; True if the handler was installed."""
    if not tracemalloc.is_tracing():
        return False
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        loop.add_signal_handler(signal.SIGUSR2, log_snapshot)
        return True
    return False
