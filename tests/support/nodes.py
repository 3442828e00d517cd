"""Three (or N) real ``rallypoint serve`` processes on one real nats-server: a cluster over sockets.

Each node has its own data directory (a copy of the test CA, so one client certificate is good on
every node), its own ephemeral ports and its own node id (``node-a``, ``node-b``...). Helpers stop,
``kill -9`` and restart a node (the restarted node keeps its id and data directory, its ports are
new) and restart the NATS server on its port and store.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.support.cot_client import CotClient, cot
from tests.support.groups import GroupMap, client_groups_lines
from tests.support.nats import NatsServer, running_nats_server
from tests.support.server import ServerProcess

NODE_IDS = ("node-a", "node-b", "node-c", "node-d", "node-e")


class Cluster:
    """``nodes[i]`` is node ``NODE_IDS[i]``; every node runs ``serve --bus <nats>`` plus ``extra``."""

    def __init__(
        self, root: Path, ca_template: Path, nats: NatsServer, *, size: int = 3, extra: Sequence[str] = (),
        env: dict[str, str] | None = None, groups: GroupMap | None = None,
    ) -> None:
        self.nats = nats
        self.extra = tuple(extra)
        self.env = env or {}
        self.dirs: list[Path] = []
        self.nodes: list[ServerProcess] = []
        for node_id in NODE_IDS[:size]:
            data = root / node_id
            shutil.copytree(ca_template, data / "ca")
            self.dirs.append(data)
        self._root = root
        self._ca_template = ca_template
        self._config: tuple[str, ...] = ()
        if groups is not None:
            config = root / "cluster.toml"
            config.write_text("\n".join(client_groups_lines(groups)) + "\n")
            self._config = ("--config", str(config))

    def _process(self, index: int) -> ServerProcess:
        env = {**self.env, "RALLYPOINT_NODE_ID": NODE_IDS[index]}
        return ServerProcess(self.dirs[index], "--bus", self.nats.url, *self._config, *self.extra, env=env)

    def start(self) -> None:
        """Start every node, in order, each ready before the next starts."""
        for index in range(len(self.dirs)):
            node = self._process(index)
            self.nodes.append(node)
            node.start()

    def stop(self) -> None:
        """SIGTERM every node still running."""
        for node in self.nodes:
            node.stop()

    def kill(self, index: int) -> None:
        """``kill -9`` node ``index``: no goodbye to NATS, no flush, no shutdown of any kind."""
        proc = self.nodes[index].proc
        assert proc is not None
        proc.kill()
        proc.wait()

    def restart(self, index: int) -> ServerProcess:
        """Stop node ``index`` (if it still runs) and start it again with its id and data directory."""
        self.nodes[index].stop()
        node = self._process(index)
        self.nodes[index] = node
        node.start()
        return node

    def add(self) -> int:
        """Start one more node (a new id, a fresh data directory); returns its index."""
        index = len(self.dirs)
        data = self._root / NODE_IDS[index]
        shutil.copytree(self._ca_template, data / "ca")
        self.dirs.append(data)
        node = self._process(index)
        self.nodes.append(node)
        node.start()
        return index

    def restart_nats(self) -> None:
        """Stop the NATS server and start it again on the same port and store (JetStream keeps its data)."""
        self.nats.stop()
        self.nats.start()

    def port(self, index: int, listener: str = "cot") -> int:
        """The port of ``listener`` of node ``index``."""
        return self.nodes[index].ports[listener]


@contextmanager
def running_cluster(
    root: Path, ca_template: Path, *, size: int = 3, extra: Sequence[str] = (), env: dict[str, str] | None = None,
    groups: GroupMap | None = None,
) -> Iterator[Cluster]:
    """A started cluster of ``size`` nodes on a private nats-server; everything stopped on exit."""
    with ExitStack() as stack:
        nats = stack.enter_context(running_nats_server(root / "nats"))
        cluster = Cluster(root, ca_template, nats, size=size, extra=extra, env=env, groups=groups)
        stack.callback(cluster.stop)
        cluster.start()
        yield cluster


async def stored_barrier(receiver: CotClient, sender: CotClient, timeout: float = 15.0) -> None:
    """Everything ``sender`` sent before now that travels stored on the bus has reached ``receiver``.

    The marker is a map item: it takes the same ordered JetStream path as chat, alerts and items
    (positions go over core NATS and may overtake them, so a position marker proves nothing here).
    """
    marker = f"barrier-{uuid.uuid4()}"
    await sender.send(cot(marker, "b-m-p-s-m"))
    await receiver.wait_uid(marker, timeout)
