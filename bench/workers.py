"""``rallypoint serve --workers N`` against one worker: the same load, N processes behind the same port.

    .venv/bin/python bench/workers.py                      # workers 1 and 2, blast and fanout200
    .venv/bin/python bench/workers.py --workers 1,2,3 --scenarios blast --quick

Each (workers, scenario) pair gets a freshly started server (with ``--workers`` above 1 an embedded
nats-server carries delivery between the workers) started like bench/compare.py starts Rallypoint.
Server CPU is not sampled: the load tool samples one process, and here the work is spread over the
workers and nats-server. Results go to bench/results/workers<N>-<scenario>.json and a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator

import compare
import servers

sys.path.insert(0, str(servers.ROOT / "src"))

from rallypoint.loadgen import BenchError, BenchReport, BenchSpec, run_bench
from rallypoint.loadgen.report import to_json


@contextlib.contextmanager
def rallypoint_workers(workers: int) -> Iterator[servers.Running]:
    """Rallypoint with ``--workers workers`` on a free plain CoT port, abuse limits lifted as in compare.py."""
    port, http_port = servers.free_port(), servers.free_port()
    base, env = servers._rallypoint_cmd()
    env.update(
        RALLYPOINT_MAX_EVENTS_PER_S="0", RALLYPOINT_IP_EVENTS_PER_S="0", RALLYPOINT_MAX_CONNECTIONS_PER_IP="0",
    )
    name = f"rallypoint-workers{workers}"
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        cmd = [
            *base, "serve", "--data-dir", tmp, "--cot-port", str(port), "--tls-port", "0",
            "--api-port", "0", "--enroll-port", "0", "--http-port", str(http_port),
            "--federation-port", "0", "--workers", str(workers),
        ]  # fmt: skip
        with servers._process(name, cmd, lambda log: servers._log_says(log, "rallypoint ready"), env=env) as proc:
            yield servers.Running(name, port, proc.pid, servers.LOGS / f"{name}.log")


def run_one(workers: int, scenario: compare.Scenario, quick: bool) -> BenchReport:
    with rallypoint_workers(workers) as running:
        spec = BenchSpec(
            host="127.0.0.1", port=running.port, mode=scenario.mode, clients=max(scenario.clients, 2),
            rate=scenario.rate or 1.0, receivers=scenario.receivers or 10,
            duration=5.0 if quick else scenario.duration, warmup=30.0, run_id=f"w{workers}{scenario.name}",
        )
        return run_bench(spec)


def main() -> int:
    parser = argparse.ArgumentParser(description="serve --workers N against one worker.")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--scenarios", default="blast,fanout200")
    parser.add_argument("--quick", action="store_true", help="5 s windows instead of 20 s / 10 s")
    args = parser.parse_args()
    servers.raise_fd_limit()
    compare.RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, BenchReport | str]] = []
    for count in (int(part) for part in args.workers.split(",")):
        for name in args.scenarios.split(","):
            print(f"== workers {count} / {name} (load average {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
            try:
                report = run_one(count, compare.SCENARIOS[name], args.quick)
            except (servers.ServerUnavailable, BenchError, OSError) as exc:
                rows.append((f"workers {count}", name, f"not run: {exc}"[:120]))
                continue
            out = compare.RESULTS / f"workers{count}-{name}.json"
            out.write_text(json.dumps(json.loads(to_json(report)), indent=2) + "\n")
            rows.append((f"workers {count}", name, report))
    print(compare.markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
