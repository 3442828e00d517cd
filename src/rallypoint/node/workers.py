"""Workers of ``serve --workers N``: what each one is told, the ports they share, and the worker's side.

The supervisor (node/supervisor.py) resolves every port once, holds it, and hands each worker a
:class:`WorkerSpec` (its complete settings) as one JSON line on the worker's stdin. The worker keeps
that pipe open: when it reaches end of file the supervisor is gone, and the worker stops instead of
serving on as an orphan.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import msgspec

from rallypoint.config import Settings
from rallypoint.errors import ConfigError
from rallypoint.node.core import WorkerSlot

# Listener name (as in the ``ports`` of the ready line) -> the setting holding its port.
PORT_SETTINGS = {
    "tls": "tls_port", "cot": "cot_port", "udp": "udp_port", "http": "http_port", "api": "api_port",
    "enroll": "enroll_port",
}
# The line a worker writes on its stdout once every listener accepts.
READY_LINE = b"ready\n"


class WorkerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a worker needs: its slot and its complete settings (ports resolved, bus set)."""

    index: int
    count: int
    restarts: int
    settings: Settings


@dataclass(frozen=True)
class Listener:
    """One listener the workers share: where it binds and whether it is UDP."""

    name: str
    host: str
    port: int
    udp: bool


def refuse_unsafe(settings: Settings) -> None:
    """``ConfigError`` for combinations several workers cannot serve correctly."""
    if settings.federation_enabled:
        raise ConfigError(
            "workers > 1 cannot run federation: each link keeps its queue and acknowledgements in one"
            " process (federation/federation.db); run federation with workers = 1"
        )
    if settings.storage.startswith("memory:"):
        raise ConfigError(
            "workers > 1 cannot share a memory:// store (each process would keep its own history);"
            " use the default SQLite storage or postgresql://"
        )


def planned_listeners(settings: Settings) -> list[Listener]:
    """The listeners a node with ``settings`` opens (the same conditions as ``Node.run``)."""
    s = settings
    wanted = [
        Listener("tls", s.bind, s.tls_port, False),
        Listener("cot", s.plain_bind, s.cot_port, False),
        Listener("udp", s.udp_bind or s.plain_bind, s.udp_port if s.udp_enabled else 0, True),
        Listener("http", s.plain_bind, s.http_port, False),
        Listener("api", s.bind, s.api_port, False),
        Listener("enroll", s.bind, s.enroll_port, False),
    ]
    return [listener for listener in wanted if listener.port]


def reserve(listener: Listener, *, ephemeral: bool) -> socket.socket:
    """A socket bound (not listening) to the listener's address with SO_REUSEPORT.

    It learns the port when the OS picks it (``ephemeral``) and keeps it: no other program can
    take the port between worker restarts, while the workers' own SO_REUSEPORT sockets can bind
    it too. A bound TCP socket that does not listen never receives a connection.
    """
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM if listener.udp else socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((listener.host, 0 if ephemeral else listener.port))
    except OSError as exc:
        sock.close()
        where = f"{listener.host}:{listener.port}"
        raise ConfigError(f"cannot bind the {listener.name} listener on {where}: {exc}") from exc
    return sock


def worker_settings(settings: Settings, *, index: int, ports: dict[str, int], bus: str, node_id: str) -> Settings:
    """The settings of worker ``index`` (1-based): the shared ports and bus, its own node id.

    Only worker 1 runs the demo units (one set of them, not one per worker) and joins UDP
    multicast groups (a multicast datagram reaches every socket in the group, so N members would
    ingest it N times; unicast datagrams are spread across the workers instead).
    """
    resolved = {PORT_SETTINGS[name]: port for name, port in ports.items()}
    return msgspec.structs.replace(
        settings, workers=1, bus=bus, node_id=f"{node_id}-w{index}", ephemeral_ports=False,
        demo=settings.demo and index == 1,
        udp_enabled=settings.udp_enabled and (index == 1 or not settings.udp_multicast),
        **resolved,
    )


def encode_spec(spec: WorkerSpec) -> bytes:
    """One JSON line for the worker's stdin."""
    return msgspec.json.encode(spec) + b"\n"


def read_spec(stdin: BinaryIO) -> WorkerSpec:
    """The spec the supervisor wrote on this worker's stdin (``ConfigError`` if it is not one)."""
    line = stdin.readline()
    try:
        return msgspec.json.decode(line, type=WorkerSpec)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"worker: expected the supervisor's settings on stdin: {exc}") from exc


class _ParentWatch(asyncio.Protocol):
    """Reads the worker's stdin only to notice its end: the supervisor closed it or died."""

    def __init__(self, gone: Callable[[], None]) -> None:
        self._gone = gone

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()


async def serve_worker(spec: WorkerSpec, *, stdin: BinaryIO, ready_out: BinaryIO) -> None:
    """Run this process as worker ``spec.index``: serve until SIGTERM or until the supervisor is gone."""
    from rallypoint.node.build import build_node

    node = build_node(spec.settings)
    node.worker = WorkerSlot(index=spec.index, count=spec.count, restarts=spec.restarts)
    node.metrics.add_gauges(lambda: [
        ("rallypoint_worker_restarts", "Times the supervisor restarted this worker's slot", float(spec.restarts)),
    ])
    loop = asyncio.get_running_loop()
    pipe, _ = await loop.connect_read_pipe(lambda: _ParentWatch(node.stop), stdin)

    async def announce() -> None:
        await node.ready.wait()
        ready_out.write(READY_LINE)
        ready_out.flush()

    try:
        async with asyncio.TaskGroup() as tg:
            announcing = tg.create_task(announce(), name="worker-ready")
            try:
                await node.run()
            finally:
                announcing.cancel()
    finally:
        pipe.close()
