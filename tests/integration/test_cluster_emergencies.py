"""One emergency repeater per cluster: three real nodes, one alert, each repeat once; failover on kill -9."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_emergencies import alert
from tests.support.cot_client import CotClient
from tests.support.metrics import metric_value
from tests.support.nodes import Cluster, running_cluster
from tests.support.poll import wait_until

REPEAT_S = 0.3
TIMEOUT_S = 30.0


@pytest.fixture
def cluster(tmp_path: Path, ca_template: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, ca_template, env={"RALLYPOINT_EMERGENCY_REPEAT_S": str(REPEAT_S)}) as running:
        yield running


def _times(client: CotClient, uid: str) -> list[int]:
    return [e.time for e in client.events if e.uid == uid]


def _assert_once_per_interval(times: list[int]) -> None:
    # Every repeat is stamped when it is made: two repeaters would interleave their repeats, two
    # of them then closer together than the configured interval.
    repeats = times[1:]
    gaps = [later - earlier for earlier, later in itertools.pairwise(repeats)]
    assert gaps and min(gaps) >= REPEAT_S * 1000 * 0.9, f"repeats closer than the interval: {gaps}"


def _repeaters(cluster: Cluster, alive: list[int]) -> dict[int, float]:
    counts = {i: metric_value(cluster.nodes[i], "rallypoint_emergency_repeats_total") for i in alive}
    return {i: n for i, n in counts.items() if n > 0}


async def test_one_node_repeats_an_alert_and_another_takes_over_when_it_is_killed(
    cluster: Cluster, clients: list[object]
) -> None:
    sender = await CotClient.connect(cluster.port(0))
    receivers = [await CotClient.connect(cluster.port(i)) for i in range(3)]
    clients.extend([sender, *receivers])
    uid, message = alert("b-a-o-tbl", "DEVICE-CLUSTER", "SOS")
    await sender.send(message)
    for receiver in receivers:
        await receiver.wait_for(lambda _, r=receiver: len(_times(r, uid)) >= 5, TIMEOUT_S)  # type: ignore[misc]
    holders = _repeaters(cluster, [0, 1, 2])
    assert len(holders) == 1, f"more than one node repeats the alert: {holders}"
    for receiver in receivers:
        _assert_once_per_interval(_times(receiver, uid))

    (holder,) = holders
    cluster.kill(holder)
    survivors = [i for i in range(3) if i != holder]
    seen = {i: len(_times(receivers[i], uid)) for i in survivors}
    for i in survivors:
        receiver = receivers[i]
        await receiver.wait_for(lambda _, r=receiver, n=seen[i]: len(_times(r, uid)) >= n + 5, TIMEOUT_S)  # type: ignore[misc]
    new_holders = await wait_until(lambda: _repeaters(cluster, survivors) or None, "a surviving repeater")
    assert len(new_holders) == 1, f"more than one surviving node repeats the alert: {new_holders}"
    for i in survivors:
        _assert_once_per_interval(_times(receivers[i], uid)[seen[i] - 1:])
