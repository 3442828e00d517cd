"""Two real servers with ``--bus nats://...`` on one NATS server: delivery crosses nodes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cot_client import CotClient, cot, sa
from tests.support.nats import NatsServer, running_nats_server
from tests.support.server import ServerProcess

HOUR_S = 3600.0


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    with running_nats_server(tmp_path / "nats") as server:
        yield server


@pytest.fixture
def two_nodes(tmp_path: Path, data_dir: Path, ca_template: Path, nats: NatsServer) -> Iterator[list[ServerProcess]]:
    second = tmp_path / "data-b"
    shutil.copytree(ca_template, second / "ca")
    with (
        ServerProcess(data_dir, "--bus", nats.url, env={"RALLYPOINT_NODE_ID": "node-a"}) as a,
        ServerProcess(second, "--bus", nats.url, env={"RALLYPOINT_NODE_ID": "node-b"}) as b,
    ):
        yield [a, b]


async def test_positions_and_markers_reach_a_client_of_the_other_node(
    two_nodes: list[ServerProcess], clients: list[object]
) -> None:
    a, b = two_nodes
    alpha = await CotClient.connect(a.ports["cot"])
    bravo = await CotClient.connect(b.ports["cot"])
    clients.extend([alpha, bravo])
    await alpha.send(sa("dev-alpha", "ALPHA"))
    await bravo.wait_uid("dev-alpha", timeout=15)  # core NATS
    await alpha.send(cot("nats-marker", "b-m-p-s-m", stale_s=HOUR_S, lat=45.5, lon=7.25))
    marker = await bravo.wait_uid("nats-marker", timeout=15)  # JetStream
    assert (marker.point.lat, marker.point.lon) == (45.5, 7.25)
    await bravo.send(sa("dev-bravo", "BRAVO"))
    await alpha.wait_uid("dev-bravo", timeout=15)


async def test_an_unreachable_nats_is_a_clear_error_at_start(data_dir: Path) -> None:
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rallypoint.cli.main", "serve", "--data-dir", str(data_dir),
         "--tls-port", "0", "--api-port", "0", "--http-port", "0", "--enroll-port", "0", "--federation-port", "0",
         "--bus", "nats://127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1 and "bus error: NATS at nats://127.0.0.1:1" in proc.stderr, proc.stderr[-2000:]


async def test_a_bus_that_is_neither_local_nor_nats_is_refused(data_dir: Path) -> None:
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rallypoint.cli.main", "serve", "--data-dir", str(data_dir), "--bus", "kafka://x:9092"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and "bus 'kafka://x:9092'" in proc.stderr, proc.stderr[-2000:]
