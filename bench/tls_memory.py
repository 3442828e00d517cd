"""Server memory under load with many TLS clients, every one receiving every report.

Starts a fresh Rallypoint with its TLS CoT port on, issues one client certificate (the server's
``max_connections_per_identity`` is lifted so every bench client may share it), runs
``rallypoint bench --tls`` in fan-out and samples the server's RSS every 0.5 s from before the
first connection until the clients have gone. Prints RSS at start, peak and end, the delivery
ratio and latency.

    .venv/bin/python bench/tls_memory.py --clients 1000 --rate 0.2 --duration 60 --processes 2
    .venv/bin/python bench/tls_memory.py --env MALLOC_ARENA_MAX=2     # extra server environment

``--env NAME=VALUE`` (repeatable) goes to the server process only. Where the memory goes:

    .venv/bin/python bench/tls_memory.py --env PYTHONTRACEMALLOC=1 --snapshot-every 5
    grep "memory snapshot" bench/results/logs/rallypoint-tls.log
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

import psutil  # noqa: E402
import servers  # noqa: E402
from slow_receivers import scrape  # noqa: E402

from rallypoint.loadgen.report import to_json  # noqa: E402
from rallypoint.loadgen.run import run_bench  # noqa: E402
from rallypoint.loadgen.spec import BenchSpec  # noqa: E402

_MB = 1024 * 1024
SAMPLE_S = 0.5
CERT_NAME = "bench"


@contextlib.contextmanager
def tls_rallypoint(data_dir: Path, extra_env: dict[str, str]) -> Iterator[tuple[int, int, int]]:
    """A Rallypoint with only its TLS CoT and plain HTTP ports: yields (tls port, http port, pid)."""
    tls_port, http_port = servers.free_port(), servers.free_port()
    base, env = servers._rallypoint_cmd()
    env.update(
        RALLYPOINT_MAX_EVENTS_PER_S="0", RALLYPOINT_IP_EVENTS_PER_S="0", RALLYPOINT_MAX_CONNECTIONS_PER_IP="0",
        RALLYPOINT_MAX_CONNECTIONS_PER_IDENTITY="0",
    )  # fmt: skip
    env.update(extra_env)
    cmd = [
        *base, "serve", "--data-dir", str(data_dir), "--cot-port", "0", "--tls-port", str(tls_port),
        "--api-port", "0", "--enroll-port", "0", "--http-port", str(http_port), "--federation-port", "0",
    ]  # fmt: skip
    ready = lambda log: servers._log_says(log, "rallypoint ready")  # noqa: E731
    with servers._process("rallypoint-tls", cmd, ready, env=env) as proc:
        yield tls_port, http_port, proc.pid


def issue_cert(data_dir: Path, out: Path) -> None:
    base, env = servers._rallypoint_cmd()
    cmd = [*base, "cert", "issue", CERT_NAME, "--data-dir", str(data_dir), "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, capture_output=True)


class RssSampler:
    """RSS of one process every SAMPLE_S seconds on a thread, from start() to stop()."""

    def __init__(self, pid: int, snapshot_every_s: float = 0.0) -> None:
        self._proc = psutil.Process(pid)
        self._snapshot_every = int(snapshot_every_s / SAMPLE_S) if snapshot_every_s > 0 else 0
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        tick = 0
        while True:
            with contextlib.suppress(psutil.Error):
                self.samples.append(self._proc.memory_info().rss / _MB)
                tick += 1
                if self._snapshot_every and tick % self._snapshot_every == 0:
                    # The server logs a "memory snapshot" line (it must run with PYTHONTRACEMALLOC=N).
                    self._proc.send_signal(signal.SIGUSR2)
            if self._stop.wait(SAMPLE_S):
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--proto", default="xml", choices=("xml", "protobuf"))
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="server environment")
    parser.add_argument(
        "--snapshot-every", type=float, default=0.0, metavar="S",
        help="send the server SIGUSR2 every S seconds (with --env PYTHONTRACEMALLOC=N: top allocations in its log)",
    )  # fmt: skip
    parser.add_argument("--series", action="store_true", help="also print RSS every 2 s")
    parser.add_argument("--json", action="store_true", help="also print the bench report as JSON")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    servers.raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="bench-tls-memory-") as tmp:
        data_dir, certs = Path(tmp) / "data", Path(tmp) / "certs"
        with tls_rallypoint(data_dir, extra) as (port, http_port, pid):
            issue_cert(data_dir, certs)
            sampler = RssSampler(pid, args.snapshot_every)
            sampler.start()
            spec = BenchSpec(
                host="127.0.0.1", port=port, clients=args.clients, rate=args.rate, duration=args.duration,
                tls=True, ca=str(certs / "ca.pem"), cert=str(certs / f"{CERT_NAME}.pem"),
                key=str(certs / f"{CERT_NAME}.key"), proto=args.proto, server_pid=pid, processes=args.processes,
                metrics_url=f"http://127.0.0.1:{http_port}/metrics",
            )  # fmt: skip
            report = run_bench(spec)
            metrics = scrape(http_port)
            # "end": the clients have gone and the server has had a moment to release their sessions.
            time.sleep(3.0)
            sampler.stop()
    rss = sampler.samples
    result = {
        "clients": args.clients, "rate_hz": args.rate, "duration_s": args.duration, "proto": args.proto,
        "server_env": extra, "connected": report.connected, "connect_failures": report.connect_failures,
        "delivered": report.delivered, "expected": report.expected,
        "delivery_ratio": round(report.delivery_ratio, 5),
        "p50_ms": report.latency.p50_ms, "p99_ms": report.latency.p99_ms, "max_ms": report.latency.max_ms,
        # Positions a receiver that fell behind got only the latest of (outbox, by design), and drops.
        "outbox_coalesced": int(metrics.get("rallypoint_outbox_coalesced_total", 0)),
        "outbox_dropped": int(metrics.get("rallypoint_outbox_dropped_total", 0)),
        "rss_mb_start": round(rss[0], 1), "rss_mb_peak": round(max(rss), 1), "rss_mb_end": round(rss[-1], 1),
    }  # fmt: skip
    if args.series:
        result["rss_mb_every_2s"] = [round(v) for v in rss[:: int(2 / SAMPLE_S)]]
    out = servers.BENCH / "results" / "tls-memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if args.json:
        print(to_json(report))
    return 0 if report.delivery_ratio >= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
