"""Designation API answer times with 1,000 designations in one mission (target: every call under 50 ms p99).

Run: .venv/bin/python bench/designations_api.py [--designations N] [--reads N] [--json]

A real server is started for the run (``rallypoint serve``, SQLite stores, loopback HTTP, bearer
tokens). Accounts: a proposer (member) and an approver (role approver) in one group. One mission is
created, then, timed call by call from the client: ``POST /api/designations`` N times, all linked to
the mission (every fourth an area of 24 vertices, the rest points); ``GET /api/designations`` (the
whole list) and ``?state=proposed``; ``GET /api/designations/{id}``; ``POST .../approve`` for half
(each also writes the approved designation into the mission); ``POST .../reject`` for a quarter;
``DELETE`` (withdraw) for the rest; then the lists again with every designation decided. Each figure
is the wall time of one request as the client sees it, plus the server's CPU time per request (from
/proc, user + system), which other load on a shared machine does not inflate, and, as a peer measured
in the same run, the p99 of ``GET /api/health`` sent right after each timed call.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import httpx
from api_timing import TARGET_MS, CallTimings, free_port, running_server

GROUP = "Ops"


def proposal(i: int, rng: random.Random) -> dict[str, Any]:
    lat, lon = 39.0 + rng.random() / 5, -120.2 + rng.random() / 5
    body: dict[str, Any] = {
        "title": f"Designation {i}", "priority": 1 + i % 5, "mission": "sweep",
        "category": ("casualty", "hazard", "landing_site", "drop_zone", "watch")[i % 5],
        "affiliation": ("friend", "hostile", "neutral", "unknown")[i % 4], "notes": "seen from the ridge " * 5,
    }
    if i % 4 == 0:
        # A simple ring: 24 vertices on a small circle.
        angles = [k * math.pi / 12 for k in range(24)]
        body["polygon"] = [{"lat": lat + 0.002 * math.sin(a), "lon": lon + 0.002 * math.cos(a)} for a in angles]
    else:
        body["point"] = {"lat": lat, "lon": lon}
    return body


def login(http: httpx.Client, name: str, password: str) -> dict[str, str]:
    token = http.post("/api/auth/token", auth=(name, password)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def bench(count: int, reads: int, as_json: bool) -> None:
    base = [sys.executable, "-m", "rallypoint.cli.main"]
    password = "bench passphrase 1234"
    rng = random.Random(13)
    with tempfile.TemporaryDirectory(prefix="bench-designations-") as tmp:
        for name, role in (("proposer", "member"), ("approver", "approver")):
            subprocess.run([*base, "user", "add", name, "--group", GROUP, "--role", role, "--data-dir", tmp,
                            "--password-stdin"], input=password + "\n", text=True, check=True, capture_output=True)
        port = free_port()
        cmd = [*base, "serve", "--data-dir", tmp, "--tls-port", "0", "--api-port", "0", "--enroll-port", "0",
               "--federation-port", "0", "--http-port", str(port)]
        with running_server(cmd) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            mine = login(http, "proposer", password)
            approver = login(http, "approver", password)
            http.post("/api/missions", json={"name": "sweep"}, headers=mine).raise_for_status()
            r = CallTimings(proc.pid, lambda: http.get("/api/health"))

            def propose(i: int) -> Callable[[], httpx.Response]:
                body = proposal(i, rng)
                return lambda: http.post("/api/designations", json=body, headers=mine)

            def lists(label: str) -> None:
                r.timed(f"GET /api/designations (all){label}",
                        [lambda: http.get("/api/designations", headers=approver)] * max(1, reads // 5))
                r.timed(f"GET /api/designations?state=proposed{label}",
                        [lambda: http.get("/api/designations", params={"state": "proposed"}, headers=mine)]
                        * max(1, reads // 5))

            proposed = r.timed("POST /api/designations", [propose(i) for i in range(count)])
            ids = [a.json()["id"] for a in proposed]
            lists("")
            r.timed("GET /api/designations/{id}",
                    [lambda i=i: http.get(f"/api/designations/{i}", headers=mine)
                     for i in rng.sample(ids, min(reads, len(ids)))])
            half, quarter, rest = ids[::2], ids[1::4], ids[3::4]
            r.timed("POST /api/designations/{id}/approve",
                    [lambda i=i: http.post(f"/api/designations/{i}/approve", headers=approver) for i in half])
            r.timed("POST /api/designations/{id}/reject",
                    [lambda i=i: http.post(f"/api/designations/{i}/reject", json={"reason": "duplicate"},
                                           headers=approver) for i in quarter])
            r.timed("DELETE /api/designations/{id} (withdraw)",
                    [lambda i=i: http.delete(f"/api/designations/{i}", headers=mine) for i in rest])
            lists(", all decided")
            listed = http.get("/api/designations", headers=mine).json()
            assert len(listed) == count, len(listed)
            uids = http.get("/api/missions/sweep", headers=mine).json()["uids"]
            assert len(uids) == len(half), (len(uids), len(half))
    if as_json:
        print(json.dumps({"designations": count, "target_p99_ms": TARGET_MS, "calls": r.rows}, indent=2))
    else:
        print(f"{count} designations in one mission; target: p99 under {TARGET_MS:.0f} ms for every call")
        r.report()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designations", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bench(args.designations, args.reads, args.json)


if __name__ == "__main__":
    main()
