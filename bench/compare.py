"""Baselines: the same load scenarios against the bench relay, taky and Rallypoint.

    .venv/bin/python bench/compare.py                       # everything
    .venv/bin/python bench/compare.py --servers relay,taky --scenarios blast
    .venv/bin/python bench/compare.py --quick               # 5 s windows, for a smoke run

Every (server, scenario) pair gets a freshly started server; results are written to
bench/results/<server>-<scenario>.json and a markdown table is printed (and saved as
bench/results/summary.md). A server that cannot start here is reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import msgspec
import servers

sys.path.insert(0, str(servers.ROOT / "src"))

from rallypoint.loadgen import BenchError, BenchReport, BenchSpec, run_bench
from rallypoint.loadgen.report import to_json

RESULTS = servers.BENCH / "results"


@dataclass(frozen=True)
class Scenario:
    name: str
    mode: str
    clients: int = 0
    rate: float = 0.0
    receivers: int = 0
    duration: float = 20.0


SCENARIOS = {
    "fanout200": Scenario("fanout200", "fanout", clients=200, rate=2.0),
    "fanout500": Scenario("fanout500", "fanout", clients=500, rate=1.0),
    "blast": Scenario("blast", "blast", receivers=10, duration=10.0),
}


def run_one(server: str, scenario: Scenario, quick: bool, processes: int, proto: str) -> BenchReport:
    with servers.LAUNCHERS[server]() as running:
        spec = BenchSpec(
            host="127.0.0.1",
            port=running.port,
            mode=scenario.mode,
            clients=max(scenario.clients, 2),
            rate=scenario.rate or 1.0,
            receivers=scenario.receivers or 10,
            duration=5.0 if quick else scenario.duration,
            server_pid=running.pid,
            processes=processes,
            proto=proto,
            warmup=30.0,
            run_id=f"{server[:3]}{scenario.name}",
        )
        return run_bench(spec)


def _cell(value: float | None, fmt: str = "{:,.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def markdown(rows: list[tuple[str, str, BenchReport | str]]) -> str:
    lines = [
        "| server | scenario | sent/s | delivered/s | ratio | p50 ms | p95 ms | p99 ms | max ms "
        "| server CPU avg/max % | server RSS max MB | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server, name, rep in rows:
        if isinstance(rep, str):
            lines.append(f"| {server} | {name} | {rep} |" + " |" * 10)
            continue
        lat, srv = rep.latency, rep.server
        cpu = f"{_cell(srv.cpu_percent_avg, '{:.0f}')}/{_cell(srv.cpu_percent_max, '{:.0f}')}" if srv else "-"
        lines.append(
            f"| {server} | {name} | {rep.sent_per_s:,.0f} | {rep.delivered_per_s:,.0f} | "
            f"{rep.delivery_ratio:.4f} | {_cell(lat.p50_ms)} | {_cell(lat.p95_ms)} | {_cell(lat.p99_ms)} | "
            f"{_cell(lat.max_ms)} | {cpu} | {_cell(srv.rss_mb_max if srv else None)} | "
            f"{rep.errors + rep.disconnects} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the baseline scenarios.")
    parser.add_argument("--servers", default="relay,taky,rallypoint")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="5 s windows instead of 20 s / 10 s")
    parser.add_argument("--processes", type=int, default=1, help="bench worker processes")
    parser.add_argument("--proto", default="xml", choices=("xml", "protobuf"))
    args = parser.parse_args()
    servers.raise_fd_limit()
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, BenchReport | str]] = []
    for server in args.servers.split(","):
        for name in args.scenarios.split(","):
            scenario = SCENARIOS[name]
            print(f"== {server} / {name}", file=sys.stderr, flush=True)
            try:
                report = run_one(server, scenario, args.quick, args.processes, args.proto)
            except (servers.ServerUnavailable, BenchError, OSError) as exc:
                print(f"   skipped: {exc}", file=sys.stderr, flush=True)
                rows.append((server, name, f"not run: {exc}"[:120]))
                continue
            out = RESULTS / f"{server}-{name}{'-' + args.proto if args.proto != 'xml' else ''}.json"
            out.write_text(json.dumps(json.loads(to_json(report)), indent=2) + "\n")
            print(
                f"   delivered {report.delivered_per_s:,.0f}/s ratio {report.delivery_ratio:.4f} "
                f"p50 {report.latency.p50_ms} ms -> {out.relative_to(servers.ROOT)}",
                file=sys.stderr,
                flush=True,
            )
            rows.append((server, name, report))
    print(markdown(rows))
    # summary.md covers every result on disk, so servers measured in separate runs line up.
    (RESULTS / "summary.md").write_text(markdown(saved_results()) + "\n")
    return 0


def saved_results() -> list[tuple[str, str, BenchReport | str]]:
    """Every (server, scenario) result in bench/results/, in a stable order."""
    rows: list[tuple[str, str, BenchReport | str]] = []
    for server in servers.LAUNCHERS:
        for name in SCENARIOS:
            for path in sorted(RESULTS.glob(f"{server}-{name}*.json")):
                report = msgspec.json.decode(path.read_bytes(), type=BenchReport)
                rows.append((server, path.stem.removeprefix(f"{server}-"), report))
    return rows


if __name__ == "__main__":
    sys.exit(main())
