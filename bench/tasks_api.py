"""Task API answer times with 1,000 tasks in one mission (target: every call under 50 ms at p99).

Run: .venv/bin/python bench/tasks_api.py [--tasks N] [--reads N] [--json]

A real server is started for the run (``rallypoint serve``, SQLite stores, loopback HTTP, bearer
token). One mission is created, then, timed call by call from the client: ``POST /api/tasks`` N times
(20 assignees by callsign, each task with a place and a due time, all in the mission); ``GET
/api/tasks?mission=`` (the whole list), ``?mission=&assignee=``, ``?mission=&state=``; ``GET
/api/tasks/{id}``; ``POST /api/tasks/{id}/status`` (acknowledged, then in_progress for half) and
``DELETE /api/tasks/{id}`` for a tenth. Each figure is the wall time of one request as the client
sees it, plus the server's CPU time per request (from /proc, user + system), which the other load on
a shared machine does not inflate, and, as a peer measured in the same run, the p99 of ``GET
/api/health`` (the cheapest call the server has) sent right after each timed call.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import httpx
from api_timing import TARGET_MS, CallTimings, free_port, running_server


def bench(tasks: int, reads: int, as_json: bool) -> None:
    base = [sys.executable, "-m", "rallypoint.cli.main"]
    password = "bench passphrase 1234"
    rng = random.Random(13)
    with tempfile.TemporaryDirectory(prefix="bench-tasks-") as tmp:
        subprocess.run([*base, "user", "add", "bench", "--data-dir", tmp, "--password-stdin"],
                       input=password + "\n", text=True, check=True, capture_output=True)
        port = free_port()
        cmd = [*base, "serve", "--data-dir", tmp, "--tls-port", "0", "--api-port", "0", "--enroll-port", "0",
               "--federation-port", "0", "--http-port", str(port)]
        with running_server(cmd) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            token = http.post("/api/auth/token", auth=("bench", password)).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            http.post("/api/missions", json={"name": "sweep"}).raise_for_status()
            now_ms = int(time.time() * 1000)
            t = CallTimings(proc.pid, lambda: http.get("/api/health"))

            def create(i: int) -> Callable[[], httpx.Response]:
                body = {"what": f"Search grid square {i}", "assignee": {"callsign": f"UNIT-{i % 20:02d}"},
                        "where": {"lat": 39.0 + rng.random() / 10, "lon": -120.1 + rng.random() / 10},
                        "due_ms": now_ms + 3_600_000 + i * 1000, "mission": "sweep"}
                return lambda: http.post("/api/tasks", json=body)

            ids = [a.json()["id"] for a in t.timed("POST /api/tasks", [create(i) for i in range(tasks)])]
            t.timed("GET /api/tasks?mission= (all)",
                  [lambda: http.get("/api/tasks", params={"mission": "sweep"})] * max(1, reads // 5))
            t.timed("GET /api/tasks?mission=&assignee=",
                  [lambda: http.get("/api/tasks", params={"mission": "sweep", "assignee": "UNIT-07"})] * reads)
            t.timed("GET /api/tasks/{id}",
                  [lambda i=i: http.get(f"/api/tasks/{i}") for i in rng.sample(ids, min(reads, len(ids)))])
            t.timed("POST /api/tasks/{id}/status acknowledged",
                  [lambda i=i: http.post(f"/api/tasks/{i}/status", json={"state": "acknowledged"})
                   for i in ids])
            t.timed("POST /api/tasks/{id}/status in_progress",
                  [lambda i=i: http.post(f"/api/tasks/{i}/status", json={"state": "in_progress"})
                   for i in ids[::2]])
            t.timed("GET /api/tasks?mission=&state=",
                  [lambda: http.get("/api/tasks", params={"mission": "sweep", "state": "in_progress"})]
                  * max(1, reads // 5))
            t.timed("DELETE /api/tasks/{id}", [lambda i=i: http.delete(f"/api/tasks/{i}") for i in ids[::10]])
            listed = http.get("/api/tasks", params={"mission": "sweep"}).json()
            assert len(listed) == tasks, len(listed)
    if as_json:
        print(json.dumps({"tasks": tasks, "target_p99_ms": TARGET_MS, "calls": t.rows}, indent=2))
    else:
        print(f"{tasks} tasks in one mission; target: p99 under {TARGET_MS:.0f} ms for every call")
        t.report()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bench(args.tasks, args.reads, args.json)


if __name__ == "__main__":
    main()
