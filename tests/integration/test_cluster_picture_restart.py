"""The picture a cluster rebuilds after both nodes restart is the picture it held (the single-node
version is ``test_picture_restart.py``): another group's item reusing a marker's uid on the other
node was refused into the picture, and stays out of it after the restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.nodes import Cluster, running_cluster

GROUPS = {"blue1": ["Blue"], "blue2": ["Blue"], "blue3": ["Blue"], "red1": ["Red"], "red2": ["Red"]}
HOUR_S = 3600.0
TIMEOUT_S = 15.0


async def test_another_groups_item_sent_on_another_node_does_not_replace_a_marker_after_both_restart(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    with running_cluster(tmp_path / "cluster", ca_template, size=2, groups=GROUPS) as cluster:
        async def tls(node: int, name: str, step: str) -> CotClient:
            ctx = client_context(cluster.dirs[node], name, tmp_path / step / name)
            client = await CotClient.connect(cluster.port(node, "tls"), ssl_context=ctx)
            clients.append(client)
            return client

        blue = await tls(0, "blue1", "a")
        blue_on_b = await tls(1, "blue2", "a")
        red = await tls(1, "red1", "a")
        red_on_a = await tls(0, "red2", "a")
        await blue.send(sa("dev-blue", "BLUE"))
        await red.send(sa("dev-red", "RED"))
        await blue.send(cot("marker-x", "b-m-p-s-m", lat=10.0, lon=20.0, stale_s=HOUR_S))
        # Node B pictures Blue's marker before Red's item under the same uid arrives there.
        await blue_on_b.wait_uid("marker-x", TIMEOUT_S)
        await red.send(cot("marker-x", "b-m-p-s-m", lat=-30.0, lon=-40.0, stale_s=HOUR_S))
        # Delivered to Red on the other node, refused into the picture: Blue holds uid marker-x.
        assert (await red_on_a.wait_for(lambda e: e.uid == "marker-x", TIMEOUT_S)).point.lat == -30.0
        await _restart_both(cluster)

        blue_late = await tls(1, "blue3", "b")
        marker = await blue_late.wait_uid("marker-x", TIMEOUT_S)
        assert (marker.point.lat, marker.point.lon) == (10.0, 20.0)
        blue_late_a = await tls(0, "blue3", "c")
        marker = await blue_late_a.wait_uid("marker-x", TIMEOUT_S)
        assert (marker.point.lat, marker.point.lon) == (10.0, 20.0)
        # Red's copy never was in the picture, so Red's late joiner gets nothing under that uid.
        red_late = await tls(1, "red2", "b")
        await red_late.barrier(await tls(1, "red1", "b"))
        assert not red_late.has(lambda e: e.uid == "marker-x")


async def _restart_both(cluster: Cluster) -> None:
    """Stop both nodes, then start B (where Red's item entered) before A (where Blue's marker did)."""
    for node in cluster.nodes:
        await asyncio.to_thread(node.stop)
    for index in (1, 0):
        await asyncio.to_thread(cluster.restart, index)
