"""The per-address message rate: many connections from one address share one budget."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cot_client import CotClient, cot
from tests.support.metrics import metric_value
from tests.support.poll import wait_until
from tests.support.server import ServerProcess


@pytest.fixture
def per_address(data_dir: Path) -> Iterator[ServerProcess]:
    # Generous per connection, tight per address: only the shared budget can refuse anything.
    proc = ServerProcess(data_dir, env={
        "RALLYPOINT_MAX_EVENTS_PER_S": "1000", "RALLYPOINT_EVENTS_BURST": "1000",
        "RALLYPOINT_IP_EVENTS_PER_S": "1", "RALLYPOINT_IP_EVENTS_BURST": "10",
    })
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _rate_limited(server: ServerProcess) -> float:
    return metric_value(server, "rallypoint_events_rejected_total", reason="rate_limited", transport="tcp")


async def test_connections_from_one_address_share_its_rate(per_address: ServerProcess, clients: list[object]) -> None:
    server = per_address
    senders = [await CotClient.connect(server.ports["cot"]) for _ in range(3)]
    witness = await CotClient.connect(server.ports["cot"])
    clients.extend([*senders, witness])
    # 3 x 8 = 24 events from 127.0.0.1, each connection far below its own limit; the address holds 10.
    for n, sender in enumerate(senders):
        await sender.send(b"".join(cot(f"s{n}-{i}", "b-m-p-s-m") for i in range(8)))
    await wait_until(lambda: _rate_limited(server) >= 10, "address budget enforced")
    # Another address has its own budget: its events go through.
    with socket.socket() as other:
        other.bind(("127.0.0.2", 0))
        await asyncio.to_thread(other.connect, ("127.0.0.1", server.ports["cot"]))
        await asyncio.to_thread(other.sendall, cot("from-other-address", "b-m-p-s-m"))
        await witness.wait_uid("from-other-address")
    delivered = {e.uid for e in witness.events if e.uid.startswith("s")}
    assert 1 <= len(delivered) <= 11, delivered
