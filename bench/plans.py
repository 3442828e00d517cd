"""CPU time of the plan checks, diff and exports at the plan limits, and of refusing an absurd plan.

Run: .venv/bin/python bench/plans.py [--runs N] [--api-runs N]

In-process figures are CPU time of this process (``time.process_time``), so other work on a shared
machine does not inflate them: checking a plan at the limits (25 routes of 2,000 waypoints, 50
areas of 1,000 vertices minus the total cap, phases with dependencies), refusing a route of
100,000 waypoints from its JSON, diffing two such plans, and exporting GeoJSON, KML and a data
package. The API figures are wall-clock answer times of a real server started for the run
(loopback HTTP, anonymous): ``GET`` of that plan, and a ``PUT`` of 100,000 waypoints refused with 400.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from rallypoint.model.plan import Area, Phase, Plan, Position, Route, Waypoint
from rallypoint.services.plans_diff import diff_plans
from rallypoint.services.plans_geojson import to_geojson
from rallypoint.services.plans_kml import to_kml
from rallypoint.services.plans_package import to_package
from rallypoint.services.plans_validate import PlanInvalid, check_plan, decode_plan


def big_plan(shift: float = 0.0) -> Plan:
    """A plan at the limits: 25 routes x 2,000 waypoints would be the whole 50,000 budget, so 20 routes
    (40,000 waypoints) and 10 areas of 1,000 vertices, plus 100 chained phases."""
    areas = tuple(
        Area(id=f"area-{a}", name=f"Sector {a}", vertices=tuple(
            Position(10 + a + 0.4 * math.sin(2 * math.pi * i / 1000),
                     20 + shift + 0.4 * math.cos(2 * math.pi * i / 1000))
            for i in range(1000)))
        for a in range(10))
    routes = tuple(
        Route(id=f"route-{r}", name=f"Route {r}", waypoints=tuple(
            Waypoint(-10 - r * 0.01, 30 + shift + i * 1e-4) for i in range(2000)))
        for r in range(20))
    phases = tuple(Phase(id=f"p{n}", name=f"Phase {n}", start_ms=1_700_000_000_000 + n * 60_000,
                         end_ms=1_700_000_000_000 + (n + 1) * 60_000, depends_on=(f"p{n - 1}",) if n else ())
                   for n in range(100))
    return Plan(areas=areas, routes=routes, phases=phases)


def cpu(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return times


def report(name: str, times: list[float], unit: str = "CPU") -> None:
    ms = sorted(t * 1000 for t in times)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    print(f"{name:<44} runs {len(ms):>4}  median {statistics.median(ms):8.1f} ms  p99 {p99:8.1f} ms  ({unit})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(plan_body: bytes, absurd: bytes, runs: int) -> tuple[list[float], list[float]]:
    """Answer times of GET plan and of refusing the absurd PUT, from a fresh server."""
    base = [sys.executable, "-m", "rallypoint.cli.main"]
    with tempfile.TemporaryDirectory(prefix="bench-plans-") as tmp:
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
                json_type = {"content-type": "application/json"}
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                    http.post("/api/missions", json={"name": "Op"}).raise_for_status()
                    http.put("/api/missions/Op/plan", content=plan_body, headers=json_type).raise_for_status()
                    gets, refusals = [], []
                    for _ in range(runs):
                        start = time.perf_counter()
                        http.get("/api/missions/Op/plan").raise_for_status()
                        gets.append(time.perf_counter() - start)
                        start = time.perf_counter()
                        answer = http.put("/api/missions/Op/plan", content=absurd, headers=json_type)
                        refusals.append(time.perf_counter() - start)
                        assert answer.status_code == 400, answer.text[:200]
                    return gets, refusals
            finally:
                proc.terminate()
                proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--api-runs", type=int, default=20)
    args = parser.parse_args()
    plan, moved = big_plan(), big_plan(shift=0.001)
    check_plan(plan)
    route: dict[str, Any] = {"id": "long", "name": "Long",
                             "waypoints": [{"lat": 0.0, "lon": i * 1e-5} for i in range(100_000)]}
    absurd = json.dumps({"routes": [route]}).encode()

    def refuse() -> None:
        try:
            decode_plan(absurd)
        except PlanInvalid:
            return
        raise AssertionError("accepted")

    print(f"plan: {len(plan.areas)} areas x 1,000 vertices, {len(plan.routes)} routes x 2,000 waypoints, "
          f"{len(plan.phases)} phases; absurd body {len(absurd) // 1024} KiB")
    report("check_plan (limits, geometry, phases)", cpu(lambda: check_plan(plan), args.runs))
    report("refuse 100,000 waypoints from JSON", cpu(refuse, args.runs))
    report("diff of two such plans (every item changed)", cpu(lambda: diff_plans(plan, moved), args.runs))
    report("export GeoJSON", cpu(lambda: msgspec.json.encode(to_geojson(plan)), args.runs))
    report("export KML", cpu(lambda: to_kml(plan), args.runs))
    report("export data package", cpu(lambda: to_package(msgspec.json.encode(plan), plan, prefix="rp-plan.g",
                                                           name="Op", now_ms=1_700_000_000_000), args.runs))
    body = msgspec.json.encode({"plan": plan, "reason": "bench"})
    gets, refusals = api(body, json.dumps({"plan": {"routes": [route]}, "reason": "absurd"}).encode(), args.api_runs)
    report("GET /api/missions/Op/plan (that plan)", gets, "wall")
    report("PUT 100,000 waypoints -> 400", refusals, "wall")


if __name__ == "__main__":
    main()
