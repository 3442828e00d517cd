"""One ``rallypoint exercise run`` process driving 2,000 simulated units at 1 Hz against a real server.

Starts a fresh Rallypoint with its TLS CoT port, creates the account ``bench`` that writes to the
group ``Exercise`` and reads nothing (so the server does not fan every report out to 2,000
receivers: this measures the runner, not fan-out), issues its certificate, writes a scenario of
``--units`` random walkers reporting every ``--rate-s`` seconds for ``--duration`` seconds, and runs
``rallypoint exercise run --json`` against it. Prints the runner's send lag (actual send time minus
the time the exercise clock scheduled the report for: p50, p99, max, worst of each 10 s), the
runner's CPU, how long it waited for a core (runnable, not running: /proc/PID/schedstat; on a
loaded machine this, not the runner's own work, makes reports late), the reports sent against the
reports scripted, and the server's CPU over the run.

    .venv/bin/python bench/exercise_runner.py                       # 2,000 units, 1 Hz, 60 s
    .venv/bin/python bench/exercise_runner.py --units 500 --duration 30 --speed 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

import psutil  # noqa: E402
import servers  # noqa: E402
from tls_memory import CERT_NAME, issue_cert, tls_rallypoint  # noqa: E402

SCENARIO = """[exercise]
id = "bench-{units}"
name = "Runner benchmark"
seed = 1
duration = {duration}

[[units]]
id = "u"
callsign = "SIM"
team = "Exercise"
count = {units}
rate_s = {rate_s}
motion = {{ kind = "random_walk", speed_mps = 1.5, area = {{ lat = 39.05, lon = -120.05, radius_m = 4000 }} }}
"""


class RunqueueWait:
    """Time the runner spent runnable but waiting for a core (/proc/PID/schedstat), sampled until it exits."""

    def __init__(self, pid: int) -> None:
        self._path = Path(f"/proc/{pid}/schedstat")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.wait_s = 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.wait_s = int(self._path.read_text().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def add_account(data_dir: Path) -> None:
    """``bench`` writes to Exercise and reads no group (created before the server starts)."""
    base, env = servers._rallypoint_cmd()
    cmd = [*base, "user", "add", CERT_NAME, "--in", "Exercise", "--password-stdin", "--data-dir", str(data_dir)]
    subprocess.run(cmd, env=env, check=True, capture_output=True, input=b"bench runner passphrase 42\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--rate-s", type=float, default=1.0, help="seconds between two reports of a unit")
    parser.add_argument("--duration", type=float, default=60.0, help="exercise seconds")
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    servers.raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="bench-exercise-") as tmp:
        data_dir, certs = Path(tmp) / "data", Path(tmp) / "certs"
        data_dir.mkdir()
        add_account(data_dir)
        scenario = Path(tmp) / "bench.toml"
        scenario.write_text(SCENARIO.format(units=args.units, duration=args.duration, rate_s=args.rate_s))
        with tls_rallypoint(data_dir, {}) as (port, _http_port, pid):
            issue_cert(data_dir, certs)
            server = psutil.Process(pid)
            server_cpu = sum(server.cpu_times()[:2])
            base, env = servers._rallypoint_cmd()
            cmd = [*base, "exercise", "run", str(scenario), "--server", f"tls://127.0.0.1:{port}",
                   "--ca", str(certs / "ca.pem"), "--cert", str(certs / f"{CERT_NAME}.pem"),
                   "--key", str(certs / f"{CERT_NAME}.key"), "--speed", str(args.speed), "--json"]
            load_before = os.getloadavg()[0]
            started = time.monotonic()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=servers.raise_fd_limit)
            waits = RunqueueWait(proc.pid)
            waits.start()
            stdout, stderr = proc.communicate()
            waits.stop()
            elapsed = time.monotonic() - started
            server_cpu = sum(server.cpu_times()[:2]) - server_cpu
            load_after = os.getloadavg()[0]
    if proc.returncode != 0:
        print(stderr, file=sys.stderr)
        return 1
    summary = json.loads(stdout)
    scripted = sum(link["scheduled"] for link in summary["links"].values())
    result = {
        "units": args.units, "rate_hz": 1 / args.rate_s, "duration_s": args.duration, "speed": args.speed,
        "scripted": scripted, "sent": summary["sent"], "send_errors": summary["send_errors"],
        "lag_ms": summary["lag_ms"], "runner_cpu_s": summary["cpu_s"], "runner_play_s": summary["wall_s"],
        "runner_cpu_pct": round(100 * summary["cpu_s"] / summary["wall_s"], 1) if summary["wall_s"] else None,
        "runner_cpu_us_per_report": round(1e6 * summary["cpu_s"] / max(summary["sent"], 1), 1),
        "runner_runqueue_wait_s": round(waits.wait_s, 1),
        "command_s": round(elapsed, 1), "server_cpu_s": round(server_cpu, 1),
        "load_average_1min": [round(load_before, 1), round(load_after, 1)], "cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
