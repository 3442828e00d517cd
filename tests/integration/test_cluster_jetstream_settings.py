"""JetStream durability settings from the bus URL: applied at creation, re-applied when they change.

Against real ``nats-server`` processes: one server for limits, names and storage; a three-server
JetStream cluster for replicas, where a replicated stream keeps acknowledging with a server down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js import api

from rallypoint.bus.factory import open_bus
from rallypoint.bus.nats import NatsBus
from rallypoint.clock import ManualClock
from rallypoint.errors import BusError
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from tests.support.nats import NatsServer, running_nats_server
from tests.support.nats_cluster import running_nats_cluster
from tests.support.picture import marker
from tests.support.poll import wait_until

CLOCK = ManualClock()
GROUPS = Audience(groups=frozenset({"Cyan"}), exclude="a:s-1")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    with running_nats_server(tmp_path / "nats") as server:
        yield server


async def _stream(url: str, name: str) -> api.StreamInfo:
    nc = await nats.connect(url.split(","))
    try:
        return await nc.jetstream().stream_info(name)
    finally:
        await nc.close()


async def _started(url: str, node: str) -> NatsBus:
    bus = open_bus(url, node)
    assert isinstance(bus, NatsBus)
    await bus.start()
    return bus


def _changes(caplog: pytest.LogCaptureFixture, stream: str) -> list[str]:
    return [c for r in caplog.records if r.getMessage() == "jetstream settings changed"
            and getattr(r, "stream", None) == stream for c in getattr(r, "changes", [])]


async def test_settings_apply_at_creation_and_a_change_updates_the_stream(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="rallypoint.bus.jetstream_config")
    first = await _started(f"{nats_server.url}?cluster=ops&max_age=3600", "node-a")
    await first.close()
    info = await _stream(nats_server.url, "RP_OPS")
    assert (info.config.max_age, info.config.storage, info.config.num_replicas) == (3600.0, api.StorageType.FILE, 1)
    assert info.config.subjects == ["rp.ops.js.>"]
    assert _changes(caplog, "RP_OPS") == []

    # A node started later with another retention brings the stream in line and says what changed.
    second = await _started(f"{nats_server.url}?cluster=ops&max_age=7200", "node-b")
    await second.close()
    assert (await _stream(nats_server.url, "RP_OPS")).config.max_age == 7200.0
    assert _changes(caplog, "RP_OPS") == ["max_age: 3600.0 -> 7200.0"]

    # The same settings again change nothing; the default cluster's stream was never touched.
    caplog.clear()
    third = await _started(f"{nats_server.url}?cluster=ops&max_age=7200", "node-c")
    await third.close()
    assert _changes(caplog, "RP_OPS") == []
    with pytest.raises(nats.js.errors.NotFoundError):
        await _stream(nats_server.url, "RP_RALLYPOINT")


async def test_another_storage_type_is_refused_with_a_clear_error(nats_server: NatsServer) -> None:
    first = await _started(nats_server.url, "node-a")  # file storage, the default
    await first.close()
    bus = open_bus(f"{nats_server.url}?storage=memory", "node-b")
    try:
        with pytest.raises(BusError, match="NATS cannot change a stream's storage type"):
            await bus.start()
    finally:
        await bus.close()
    assert (await _stream(nats_server.url, "RP_RALLYPOINT")).config.storage == api.StorageType.FILE


async def test_memory_storage_on_a_new_cluster(nats_server: NatsServer) -> None:
    bus = await _started(f"{nats_server.url}?cluster=scratch&storage=memory", "node-a")
    await bus.close()
    assert (await _stream(nats_server.url, "RP_SCRATCH")).config.storage == api.StorageType.MEMORY
    assert (await _stream(nats_server.url, "KV_rp_scratch_latest")).config.storage == api.StorageType.MEMORY


async def test_replicas_are_raised_on_a_running_cluster_and_survive_a_lost_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="rallypoint.bus.jetstream_config")
    with running_nats_cluster(tmp_path / "nats") as cluster:
        await cluster.wait_ready()
        single = await _started(cluster.url, "node-a")
        await single.close()
        assert (await _stream(cluster.url, "RP_RALLYPOINT")).config.num_replicas == 1

        url = f"{cluster.url}?replicas=3"
        a, b = await _started(url, "node-a"), await _started(url, "node-b")
        try:
            assert _changes(caplog, "RP_RALLYPOINT") == ["num_replicas: 1 -> 3"]
            assert _changes(caplog, "KV_rp_rallypoint_latest") == ["num_replicas: 1 -> 3"]
            for stream in ("RP_RALLYPOINT", "KV_rp_rallypoint_latest", "KV_rp_rallypoint_leases"):
                info = await _stream(cluster.url, stream)
                assert info.config.num_replicas == 3 and info.cluster is not None
                assert len(info.cluster.replicas or []) == 2, stream

            got: list[str] = []
            b.subscribe(lambda envelope, audience: got.append(envelope.event.uid))
            # One server of three gone: the replicated stream still acknowledges and delivers.
            leader = (await _stream(cluster.url, "RP_RALLYPOINT")).cluster
            assert leader is not None
            lost = next(s for s in cluster.servers if s.name != leader.leader)
            await asyncio.to_thread(lost.stop)
            sent_before = a.statistics().sent
            for i in range(20):
                a.publish(Envelope(marker(CLOCK, f"m-{i}"), Origin(session_id="s-1", node="node-a"), 7), GROUPS)
            await wait_until(lambda: a.statistics().sent >= sent_before + 20, "20 acknowledged", timeout=30)
            await wait_until(lambda: len(got) >= 20, "20 received on node-b", timeout=30)
            assert got == [f"m-{i}" for i in range(20)]
        finally:
            await asyncio.gather(a.close(), b.close())
