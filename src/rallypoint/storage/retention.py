"""Periodic pruning of old history (``EventStore.prune``)."""

from __future__ import annotations

import asyncio
import logging

from rallypoint.clock import Clock
from rallypoint.errors import StorageError
from rallypoint.storage.base import EventStore

log = logging.getLogger(__name__)


async def run_retention(
    store: EventStore,
    *,
    retention_s: float,
    clock: Clock,
    interval_s: float,
    stop: asyncio.Event,
) -> int:
    """Prune events older than ``retention_s`` now and every ``interval_s`` until ``stop`` is set.

    Returns the total number of rows removed. A failed prune is logged and retried next interval:
    retention is housekeeping and must not stop the server.
    """
    if retention_s <= 0 or interval_s <= 0:
        raise ValueError("retention_s and interval_s must be positive")
    total = 0
    while not stop.is_set():
        cutoff = clock.now_ms() - int(retention_s * 1000)
        try:
            removed = await store.prune(cutoff)
        except StorageError:
            log.exception("pruning event history failed")
        else:
            total += removed
            if removed:
                log.info("history pruned", extra={"events": removed, "cutoff_ms": cutoff})
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            continue
    return total
