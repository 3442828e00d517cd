"""Where a Rallypoint server spends its time in the blast scenario.

    .venv/bin/pip install py-spy                   # a measuring tool, not a project dependency
    .venv/bin/python bench/profile_blast.py [--duration 10] [--top 40]

Starts Rallypoint as ``compare.py`` does, drives the blast scenario (one sender as fast as the
server accepts, 10 receivers) and samples the server with ``py-spy record --format raw`` for the
measured window. Prints the sent and delivered rates and the functions with the most samples,
both where the sample was taken ("self") and anywhere on the stack ("total"); the raw stacks are
kept in ``bench/results/profile-blast.txt`` for a flame graph.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import servers

sys.path.insert(0, str(servers.ROOT / "src"))

from rallypoint.loadgen import BenchSpec, run_bench

RESULTS = servers.BENCH / "results"


def summarize(raw: Path, top: int) -> str:
    """Self and total sample shares per function from py-spy's raw (collapsed stack) output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples", "", "self %  function"]
    lines += [f"{100 * n / samples:6.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "total %  function"]
    lines += [f"{100 * n / samples:7.1f}  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # py-spy writes "function (path/to/file.py:line)": keep the function and the file name.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({Path(path).name})" if path else name


def main() -> int:
    parser = argparse.ArgumentParser(description="Profile Rallypoint during the blast scenario.")
    parser.add_argument("--duration", type=float, default=10.0, help="measured window in seconds")
    parser.add_argument("--top", type=int, default=40, help="functions to list")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    servers.raise_fd_limit()
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / "profile-blast.txt"
    with servers.rallypoint() as running:
        spec = BenchSpec(
            host="127.0.0.1", port=running.port, mode="blast", clients=2, rate=1.0, receivers=10,
            duration=args.duration, server_pid=running.pid, processes=1, proto="xml", warmup=30.0,
            run_id="profblast",
        )  # fmt: skip
        record = [
            spy, "record", "--pid", str(running.pid), "--format", "raw", "--output", str(raw),
            "--rate", "200", "--duration", str(int(args.duration) + 3), "--nonblocking",
        ]  # fmt: skip
        # Start sampling shortly after the bench starts, so the warm-up is mostly left out.
        timer = threading.Timer(2.0, lambda: subprocess.run(record, check=False, capture_output=True))
        timer.start()
        report = run_bench(spec)
        timer.join()
    print(f"sent {report.sent_per_s:,.0f}/s  delivered {report.delivered_per_s:,.0f}/s", end="  ")
    print(f"ratio {report.delivery_ratio:.4f}")
    if report.server is not None:
        print(f"server CPU avg/max {report.server.cpu_percent_avg}/{report.server.cpu_percent_max} %")
    print(summarize(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
