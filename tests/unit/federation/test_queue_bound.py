"""A peer that never acknowledges (TAK Server) cannot grow the durable queue past ``queue_max``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rallypoint.clock import ManualClock
from rallypoint.federation.link import PeerLink
from rallypoint.storage.sqlite.federation import SqliteFederationStore
from tests.unit.federation.test_link_budget import LIMITS, PEER, _envelope, _persisted


async def test_unacknowledged_backlog_is_bounded_in_memory_and_on_disk(tmp_path: Path) -> None:
    clock = ManualClock()
    store = SqliteFederationStore(tmp_path / "federation.db")
    link = PeerLink(PEER, node_id="alpha", store=store, seen={}, accept=lambda e: None, clock=clock,
                    limits=LIMITS, max_hops=3, queue_max=5, budget_bytes_per_s=0)
    await link.load()
    persister = asyncio.create_task(link.run_persister())
    try:
        for i in range(20):
            link.offer(_envelope(clock, f"chat-{i}", "b-t-f", text=f"chat-{i}"))
        await _persisted(link, 5)
        assert link.unacked == 5 and link.dropped == 15
        backlog = await store.backlog("bravo", "unused")
        assert len(backlog.rows) == 5
        kept = [seq for seq, _ in backlog.rows]
        assert kept == sorted(kept) and kept[-1] == max(kept)  # the newest survive
    finally:
        link.close()
        await persister
        await store.close()
