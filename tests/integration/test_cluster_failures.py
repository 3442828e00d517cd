"""Failures of a three-node cluster: NATS restarted mid-traffic loses and doubles no priority message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_emergencies import alert
from tests.support.cot_client import CotClient, chat
from tests.support.nodes import Cluster, running_cluster, stored_barrier

TIMEOUT_S = 30.0
PER_PHASE = 15


@pytest.fixture
def cluster(tmp_path: Path, ca_template: Path) -> Iterator[Cluster]:
    # Repeats are off the table here: every copy a receiver holds is a delivery of the original.
    with running_cluster(tmp_path, ca_template, env={"RALLYPOINT_EMERGENCY_REPEAT_S": "3600"}) as running:
        yield running


def _chat_uid(data: bytes) -> str:
    start = data.index(b'uid="') + 5
    return data[start:data.index(b'"', start)].decode()


async def test_nats_restarted_mid_traffic_delivers_every_chat_and_alert_exactly_once(
    cluster: Cluster, clients: list[object]
) -> None:
    sender = await CotClient.connect(cluster.port(0))
    receivers = [await CotClient.connect(cluster.port(i)) for i in (1, 2)]
    clients.extend([sender, *receivers])
    sent: list[str] = []

    async def burst(phase: str) -> None:
        for n in range(PER_PHASE):
            message = chat("uid-SENDER", "SENDER", to_uid=None, to_cs=None, text=f"{phase} {n}")
            sent.append(_chat_uid(message))
            await sender.send(message)
        uid, message = alert("b-a-o-tbl", f"DEVICE-{phase}", phase.upper())
        sent.append(uid)
        await sender.send(message)

    await burst("before")
    await asyncio.to_thread(cluster.nats.stop)
    await burst("during")
    await asyncio.to_thread(cluster.nats.start)
    await burst("after")
    for receiver in receivers:
        await receiver.wait_for(lambda _, r=receiver: set(sent) <= {e.uid for e in r.events}, TIMEOUT_S)  # type: ignore[misc]
        await stored_barrier(receiver, sender)
        copies = {u: sum(1 for e in receiver.events if e.uid == u) for u in sent}
        assert {u: n for u, n in copies.items() if n != 1} == {}, "a priority message lost or delivered twice"
