"""Shared parts of the API answer-time benchmarks (``tasks_api.py``, ``designations_api.py``).

Each timed call's wall time as the client sees it, the server's CPU time per call (from /proc, user +
system, which other load on a shared machine does not inflate) and, as a peer measured in the same
run, ``GET /api/health`` (the cheapest call the server has) sent right after each timed call.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

TARGET_MS = 50.0


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@contextmanager
def running_server(cmd: list[str]) -> Iterator[subprocess.Popen[str]]:
    """Start ``rallypoint serve`` and yield it once it says it is ready; stop it afterwards."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "rallypoint ready" in line:
                    break
            else:
                raise SystemExit("the server did not start")
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


class CallTimings:
    """Times each call, the server's CPU per call, and the health peer right after it."""

    def __init__(self, pid: int, health: Callable[[], httpx.Response]) -> None:
        self.pid = pid
        self.health = health
        self.rows: list[dict[str, Any]] = []

    def timed(self, name: str, calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
        """Make ``calls`` one after another, timing each; any refusal ends the run with its answer."""
        wall: list[float] = []
        peer: list[float] = []
        answers: list[httpx.Response] = []
        cpu = 0.0
        for call in calls:
            before = server_cpu_s(self.pid)
            started = time.perf_counter()
            answer = call()
            wall.append((time.perf_counter() - started) * 1000)
            cpu += server_cpu_s(self.pid) - before
            if answer.status_code >= 400:
                raise SystemExit(f"{name}: {answer.status_code} {answer.text}")
            answers.append(answer)
            # The peer right after, so both meet the same machine load.
            started = time.perf_counter()
            self.health().raise_for_status()
            peer.append((time.perf_counter() - started) * 1000)
        self.rows.append({
            "call": name, "n": len(wall), "median_ms": round(statistics.median(wall), 2),
            "p99_ms": round(p99(wall), 2), "max_ms": round(max(wall), 2),
            "server_cpu_ms_per_call": round(cpu * 1000 / len(wall), 2), "peer_health_p99_ms": round(p99(peer), 2),
        })
        return answers

    def report(self) -> None:
        """One line per group of calls, with the verdict against :data:`TARGET_MS`."""
        for r in self.rows:
            verdict = "ok" if r["p99_ms"] < TARGET_MS else "OVER"
            print(f"{r['call']:<44} n {r['n']:>5}  median {r['median_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                  f"max {r['max_ms']:6.1f} ms  server CPU {r['server_cpu_ms_per_call']:5.2f} ms/call  "
                  f"(health p99 {r['peer_health_p99_ms']:6.1f} ms)  {verdict}")
