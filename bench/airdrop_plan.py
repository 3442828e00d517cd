"""Time of one airdrop plan with 10,000 Monte-Carlo samples and 10 wind layers.

Run: .venv/bin/python bench/airdrop_plan.py [--runs N] [--samples S] [--layers L] [--cli-runs N]

Three figures: the planner itself (``services.airdrop.plan``: validation, layered integration,
run-in, green light, Monte Carlo, footprint statistics) called in-process; ``POST /api/airdrop/plan``
answered by a real server started for the run (loopback HTTP, bearer token, JSON both ways); and
the whole command ``rallypoint airdrop plan FILE.toml --json`` as a fresh process, interpreter
start and imports included.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx

from rallypoint.services.airdrop import from_mapping, plan

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "airdrop_relief.toml"


def scenario(samples: int, layers: int) -> dict[str, Any]:
    """The documented relief example with ``layers`` wind layers up to 1,000 m and ``samples`` samples."""
    doc = tomllib.loads(EXAMPLE.read_text())
    depth = 1000.0 / layers
    doc["winds"] = [{"bottom_m": i * depth, "top_m": (i + 1) * depth, "from_deg": (240 + 3 * i) % 360,
                     "speed_kt": 8 + i} for i in range(layers)]
    doc["dispersion"]["samples"] = samples
    return doc


def toml_text(doc: dict[str, Any]) -> str:
    """Just enough TOML writing for the scenario's tables."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines: list[str] = []
    for name, table in doc.items():
        if name == "winds":
            for layer in table:
                lines += ["[[winds]]", *(f"{k} = {value(v)}" for k, v in layer.items())]
        elif name == "parachutes":
            for chute, fields in table.items():
                lines += [f"[parachutes.{chute}]", *(f"{k} = {value(v)}" for k, v in fields.items())]
        else:
            lines += [f"[{name}]", *(f"{k} = {value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def report(name: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    print(f"{name:<34} runs {len(ms):>4}  median {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  "
          f"max {ms[-1]:7.1f} ms")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_times(doc: dict[str, Any], runs: int) -> list[float]:
    """Answer times of ``POST /api/airdrop/plan`` from a fresh server (one warm-up request first)."""
    base = [sys.executable, "-m", "rallypoint.cli.main"]
    password = "bench passphrase 1234"
    with tempfile.TemporaryDirectory(prefix="bench-airdrop-") as tmp:
        subprocess.run([*base, "user", "add", "bench", "--data-dir", tmp, "--password-stdin"],
                       input=password + "\n", text=True, check=True, capture_output=True)
        port = free_port()
        cmd = [*base, "serve", "--data-dir", tmp, "--tls-port", "0", "--api-port", "0", "--enroll-port", "0",
               "--federation-port", "0", "--http-port", str(port)]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    if "rallypoint ready" in line:
                        break
                else:
                    raise SystemExit("the server did not start")
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                    token = http.post("/api/auth/token", auth=("bench", password)).json()["access_token"]
                    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
                    body = json.dumps(doc).encode()
                    http.post("/api/airdrop/plan", content=body, headers=headers).raise_for_status()
                    times = []
                    for _ in range(runs):
                        start = time.perf_counter()
                        http.post("/api/airdrop/plan", content=body, headers=headers).raise_for_status()
                        times.append(time.perf_counter() - start)
                    return times
            finally:
                proc.terminate()
                proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--api-runs", type=int, default=30)
    parser.add_argument("--cli-runs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--layers", type=int, default=10)
    args = parser.parse_args()
    doc = scenario(args.samples, args.layers)
    request = from_mapping(doc)
    plan(request)  # warm-up: first call loads pyproj's data
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        result = plan(request)
        times.append(time.perf_counter() - start)
    assert result.dispersion is not None and result.dispersion.samples == args.samples
    print(f"{args.samples} samples, {args.layers} wind layers, CEP {result.dispersion.cep_m:.0f} m")
    report("plan() in-process", times)
    report("POST /api/airdrop/plan", api_times(doc, args.api_runs))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.toml"
        path.write_text(toml_text(doc))
        command = [sys.executable, "-m", "rallypoint.cli.main", "airdrop", "plan", str(path), "--json"]
        cli_times = []
        for _ in range(args.cli_runs):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            cli_times.append(time.perf_counter() - start)
    report("rallypoint airdrop plan --json", cli_times)


if __name__ == "__main__":
    main()
