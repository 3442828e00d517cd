"""What a bench run is asked to do, validated once at the edge."""

from __future__ import annotations

import msgspec

MODES = ("fanout", "blast")
# "protobuf-deflate": TAK protocol 1 with negotiated deflate stream compression (docs/protocol.md).
PROTOS = ("xml", "protobuf", "protobuf-deflate")


class BenchSpecError(ValueError):
    """The requested run is inconsistent (reported to the user, no traceback)."""


class BenchSpec(msgspec.Struct, frozen=True):
    """One run. ``clients`` is the fan-out population; blast uses 1 sender + ``receivers``."""

    host: str
    port: int
    clients: int = 10
    rate: float = 1.0
    duration: float = 10.0
    tls: bool = False
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    proto: str = "xml"
    mode: str = "fanout"
    receivers: int = 10
    server_pid: int | None = None
    warmup: float = 10.0
    processes: int = 1
    drain: float = 5.0
    connect_timeout: float = 30.0
    run_id: str = "0"
    # Prometheus text endpoint of the server (Rallypoint: http://HOST:8080/metrics): when given, the
    # report names the server limit that closed connections from its sessions-closed counter.
    metrics_url: str | None = None
    # Several servers (nodes of one cluster): client i connects to targets[i % len(targets)];
    # empty means every client connects to host:port.
    targets: tuple[tuple[str, int], ...] = ()

    def address(self, index: int) -> tuple[str, int]:
        """Where client ``index`` connects (in blast mode index 0 is the sender)."""
        if self.targets:
            return self.targets[index % len(self.targets)]
        return self.host, self.port

    @property
    def target_text(self) -> str:
        """The servers of the run as ``host:port`` (comma-separated when several)."""
        pairs = self.targets or ((self.host, self.port),)
        return ",".join(f"{host}:{port}" for host, port in pairs)

    def validate(self) -> BenchSpec:
        """Return self, or raise BenchSpecError naming the offending option."""
        if self.mode not in MODES:
            raise BenchSpecError(f"--mode must be one of: {', '.join(MODES)}")
        if self.proto not in PROTOS:
            raise BenchSpecError(f"--proto must be one of: {', '.join(PROTOS)}")
        if not 0 < self.port < 65536:
            raise BenchSpecError("--port must be within 1..65535")
        for host, port in self.targets:
            if not host or not 0 < port < 65536:
                raise BenchSpecError(f"--target {host}:{port}: the port must be within 1..65535 and a host given")
        if self.duration <= 0:
            raise BenchSpecError("--duration must be positive")
        if self.processes < 1:
            raise BenchSpecError("--processes must be at least 1")
        if self.mode == "fanout":
            if self.clients < 2:
                raise BenchSpecError("fanout needs --clients of at least 2 (nobody else would receive)")
            if self.rate <= 0:
                raise BenchSpecError("--rate must be positive")
        elif self.receivers < 1:
            raise BenchSpecError("blast needs --receivers of at least 1")
        if self.tls and not self.ca:
            raise BenchSpecError("--tls needs --ca")
        if bool(self.cert) != bool(self.key):
            raise BenchSpecError("--cert and --key go together")
        if self.metrics_url is not None and not self.metrics_url.startswith(("http://", "https://")):
            raise BenchSpecError("--metrics-url must be an http:// or https:// URL")
        if self.warmup < 0 or self.drain < 0:
            raise BenchSpecError("--warmup must not be negative")
        return self

    @property
    def connections(self) -> int:
        """Total connections the run opens."""
        return self.clients if self.mode == "fanout" else self.receivers + 1


def parse_target(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a pair; ``BenchSpecError`` when it is not one."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BenchSpecError(f"--target must be host:port with a port within 1..65535 (got {text!r})")
    return host, int(port)


def assign(spec: BenchSpec) -> list[list[int]]:
    """Client indices per worker process.

    Fan-out clients are dealt round-robin so each worker holds evenly spread send phases.
    In blast mode index 0 is the sender; with several processes it gets a worker of its own
    so receivers never steal its CPU.
    """
    workers = min(spec.processes, spec.connections)
    if spec.mode == "blast" and workers > 1:
        plan: list[list[int]] = [[0]] + [[] for _ in range(workers - 1)]
        for i in range(1, spec.connections):
            plan[1 + (i - 1) % (workers - 1)].append(i)
        return plan
    plan = [[] for _ in range(workers)]
    for i in range(spec.connections):
        plan[i % workers].append(i)
    return plan
