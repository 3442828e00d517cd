"""``/metrics`` of the cluster machinery, read from real nodes on one nats-server."""

from __future__ import annotations

from pathlib import Path

from tests.support.cot_client import CotClient, sa
from tests.support.metrics import metric_value
from tests.support.nodes import running_cluster
from tests.support.poll import wait_until

TIMEOUT_S = 15.0
# A killed node is noticed one lease TTL (6 s) and two liveness checks (2 s each) after it died.
NODE_DEATH_S = 45.0
REPEATER = {"lease": "emergency-repeater"}
LIVENESS = {"lease": "liveness"}


async def test_leases_liveness_picture_writes_and_dead_node_removals_are_exported(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    with running_cluster(tmp_path, ca_template, size=2) as cluster:
        a, b = cluster.nodes

        def one_holder() -> list[int]:
            held = [metric_value(node, "rallypoint_lease_held", **REPEATER) for node in (a, b)]
            return [i for i, h in enumerate(held) if h == 1.0] if sorted(held) == [0.0, 1.0] else []

        (holder,) = await wait_until(one_holder, "one node holding the repeater lease", TIMEOUT_S)
        other = 1 - holder
        holder_node, other_node = cluster.nodes[holder], cluster.nodes[other]
        assert metric_value(holder_node, "rallypoint_lease_taken_total", **REPEATER) == 1.0
        for node in (a, b):
            assert metric_value(node, "rallypoint_lease_held", **LIVENESS) == 1.0
            await wait_until(lambda n=node: metric_value(n, "rallypoint_lease_renewals_total", **LIVENESS) >= 1,  # type: ignore[misc]
                             "a liveness renewal", TIMEOUT_S)
            assert metric_value(node, "rallypoint_lease_lost_total", **LIVENESS) == 0.0

        # A client of the other node reports itself: its node writes it to the cluster's picture.
        client = await CotClient.connect(cluster.port(other))
        witness = await CotClient.connect(cluster.port(holder))
        clients.extend([client, witness])
        await client.send(sa("uid-metered", "METERED"))
        await wait_until(lambda: metric_value(other_node, "rallypoint_picture_sync_written_total") >= 1,
                         "the SA written to the cluster's picture", TIMEOUT_S)
        assert metric_value(other_node, "rallypoint_picture_sync_pending") == 0.0
        assert metric_value(holder_node, "rallypoint_picture_sync_written_total") == 0.0
        await witness.wait_uid("uid-metered", TIMEOUT_S)

        # kill -9 of the other node: the lease holder finds it dead and removes its one client.
        cluster.kill(other)
        await wait_until(lambda: metric_value(holder_node, "rallypoint_cluster_nodes_removed_total") == 1.0,
                         "the dead node removed", NODE_DEATH_S)
        assert metric_value(holder_node, "rallypoint_cluster_clients_removed_total") == 1.0
        # The notice is the holder's own publication: the holder deletes the client's entry from NATS.
        await wait_until(lambda: metric_value(holder_node, "rallypoint_picture_sync_deleted_total") >= 1,
                         "the dead node's client deleted from the cluster's picture", TIMEOUT_S)
        assert metric_value(holder_node, "rallypoint_lease_held", **REPEATER) == 1.0
        assert metric_value(holder_node, "rallypoint_lease_lost_total", **REPEATER) == 0.0
