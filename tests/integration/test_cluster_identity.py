"""Uid ownership across nodes: a uid bound by a principal on one node is refused to another on any node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, sa
from tests.support.metrics import metric_value
from tests.support.nodes import Cluster, running_cluster, stored_barrier
from tests.support.poll import wait_until

TIMEOUT_S = 15.0


@pytest.fixture
def cluster(tmp_path: Path, ca_template: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path / "cluster", ca_template) as running:
        yield running


async def test_a_uid_held_on_one_node_is_refused_to_another_principal_on_another_node(
    cluster: Cluster, tmp_path: Path, clients: list[object]
) -> None:
    async def tls(node: int, name: str) -> CotClient:
        ctx = client_context(cluster.dirs[node], name, tmp_path / f"{name}-{node}")
        client = await CotClient.connect(cluster.port(node, "tls"), ssl_context=ctx)
        clients.append(client)
        return client

    alice, mallory, watcher = await tls(0, "alice"), await tls(1, "mallory"), await tls(2, "watcher")
    witness_b = await tls(1, "witness")
    await alice.send(sa("ANDROID-alice", "ALICE"))
    # Node B has taken alice's SA into its picture (and its owner map) once a client of B has it.
    await witness_b.wait_uid("ANDROID-alice", TIMEOUT_S)
    await watcher.wait_uid("ANDROID-alice", TIMEOUT_S)

    await mallory.send(sa("ANDROID-alice", "NOT-ALICE"))
    await wait_until(
        lambda: metric_value(cluster.nodes[1], "rallypoint_events_rejected_total", reason="spoofed_uid") == 1,
        "node B refusing mallory's SA for alice's uid",
    )
    line = await wait_until(
        lambda: next((ln for ln in list(cluster.nodes[1].lines) if ln.get("msg") == "input rejected"
                      and "held by another principal (alice)" in str(ln.get("detail", ""))), None),
        "the refusal logged on node B",
    )
    assert line["reason"] == "spoofed_uid"
    # Alice herself may still speak as her uid from another node (a reconnect elsewhere).
    alice_again = await tls(2, "alice")
    await alice_again.send(sa("ANDROID-alice", "ALICE-2"))
    await witness_b.wait_for(lambda e: e.uid == "ANDROID-alice" and e.detail.callsign == "ALICE-2", TIMEOUT_S)
    await stored_barrier(watcher, witness_b)
    assert not watcher.has(lambda e: e.detail.callsign == "NOT-ALICE"), "the spoofed SA reached another node"
    assert metric_value(cluster.nodes[2], "rallypoint_events_rejected_total", reason="spoofed_uid") == 0
