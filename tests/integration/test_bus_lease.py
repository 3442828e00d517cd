"""Cluster-wide leases on a real nats-server: one holder, renewal, expiry, release, a quick restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js import api
from nats.js.kv import KeyValue

from rallypoint.bus.lease import KvLease
from tests.support.nats import running_nats_server
from tests.support.poll import wait_until

TTL_S = 1.5


@pytest.fixture
async def bucket(tmp_path: Path) -> AsyncIterator[KeyValue]:
    with running_nats_server(tmp_path / "nats") as server:
        nc = await nats.connect(server.url)
        try:
            yield await nc.jetstream().create_key_value(
                bucket="rp_test_leases", history=1, ttl=TTL_S, storage=api.StorageType.MEMORY
            )
        finally:
            await nc.close()



async def test_one_holder_at_a_time_and_release_hands_over_at_once(bucket: KeyValue) -> None:
    a, b = KvLease(bucket, "job", "node-a", ttl_s=TTL_S), KvLease(bucket, "job", "node-b", ttl_s=TTL_S)
    await a.attempt()
    await b.attempt()
    assert (a.held, b.held) == (True, False)
    await a.attempt()  # a renewal
    await b.attempt()
    assert (a.held, b.held) == (True, False)
    assert (a.taken, a.renewed, b.taken, b.renewed) == (1, 1, 0, 0)
    await a.release()
    await b.attempt()
    assert (a.held, b.held) == (False, True)
    await a.attempt()
    assert not a.held


async def test_a_holder_that_stops_renewing_loses_the_lease_to_another(bucket: KeyValue) -> None:
    a, b = KvLease(bucket, "job", "node-a", ttl_s=TTL_S), KvLease(bucket, "job", "node-b", ttl_s=TTL_S)
    await a.attempt()
    stop = asyncio.Event()
    # b keeps trying; a is silent as a killed node is: its key expires and b takes the lease.
    runner = asyncio.create_task(b.run(stop))
    await wait_until(lambda: b.held, "node-b taking the expired lease", timeout=10 * TTL_S)
    await a.attempt()
    assert not a.held and b.lost == 0
    assert (a.lost, b.taken) == (1, 1)
    stop.set()
    await runner


async def test_a_node_back_before_its_key_expired_keeps_its_lease(bucket: KeyValue) -> None:
    first = KvLease(bucket, "job", "node-a", ttl_s=TTL_S)
    await first.attempt()
    again = KvLease(bucket, "job", "node-a", ttl_s=TTL_S)  # the same node, restarted
    await again.attempt()
    other = KvLease(bucket, "job", "node-b", ttl_s=TTL_S)
    await other.attempt()
    assert (again.held, other.held) == (True, False)
