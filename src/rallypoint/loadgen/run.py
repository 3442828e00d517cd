"""Coordinating a bench run: worker processes, phases, server sampling, the merged report.

The coordinator itself opens no connections. It starts ``spec.processes`` workers (spawned, so
nothing of the caller's event loop or sockets leaks into them), walks them through the phases
described in ``worker.py`` and samples the server process while load runs. One worker is enough
until the tool's own receive path nears a core; raise ``--processes`` for several thousand
clients or more than ~150,000 deliveries/s, when the machine has cores the server isn't using.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import time
from array import array
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from .diagnosis import certificate_name, explain_closures, merge_counts, read_closed_sessions
from .events import run_uid_prefix
from .procstat import ProcessSampler
from .report import BenchReport, ratio, summarize_latency
from .spec import BenchSpec, assign
from .worker import worker_main

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.5
START_LEAD_S = 1.0
PHASE_SLACK_S = 15.0
WARMUP_ROUND_S = 3.0


class BenchError(Exception):
    """The run could not be carried out (nothing connected, a worker died, ...)."""


class _Coordinator:
    def __init__(self, spec: BenchSpec, sampler: ProcessSampler | None) -> None:
        self.spec = spec
        self.sampler = sampler
        self.sampling = False
        self._last_sample = 0.0
        self.ends: list[Connection] = []
        self.procs: list[BaseProcess] = []

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        for indices in assign(self.spec):
            parent_end, child_end = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=worker_main, args=(self.spec, indices, child_end), name="rallypoint-bench", daemon=True
            )
            proc.start()
            child_end.close()
            self.ends.append(parent_end)
            self.procs.append(proc)

    def broadcast(self, kind: str, payload: dict[str, Any]) -> None:
        for end in self.ends:
            end.send((kind, payload))

    def _tick(self) -> None:
        if self.sampling and self.sampler is not None:
            now = time.monotonic()
            if now - self._last_sample >= SAMPLE_INTERVAL_S:
                self._last_sample = now
                self.sampler.sample()

    def gather(self, kind: str, timeout: float) -> list[dict[str, Any]]:
        """One ``kind`` reply from every worker, sampling the server while waiting."""
        results: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(results) < len(self.ends):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"workers did not reach phase {kind!r} within {timeout:.0f} s")
            waiting = [end for i, end in enumerate(self.ends) if i not in results]
            ready = wait(waiting, timeout=min(remaining, SAMPLE_INTERVAL_S))
            self._tick()
            for end in ready:
                assert isinstance(end, Connection)
                try:
                    got, payload = end.recv()
                except EOFError as exc:
                    raise BenchError("a bench worker exited unexpectedly") from exc
                if got == "failed":
                    raise BenchError(f"bench worker failed: {payload['error']}")
                if got != kind:
                    raise BenchError(f"bench worker answered {got!r} in phase {kind!r}")
                results[self.ends.index(end)] = payload
        return [results[i] for i in range(len(self.ends))]

    def start_sampling(self) -> None:
        if self.sampler is not None:
            self.sampler.start()
            self._last_sample = time.monotonic()
            self.sampling = True

    def stop(self, aborted: bool) -> None:
        for end in self.ends:
            if aborted:
                with contextlib.suppress(OSError):
                    end.send(("abort", {}))
        for proc in self.procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                logger.warning("bench worker %s did not exit; terminating it", proc.pid)
                proc.terminate()
                proc.join(timeout=2.0)
        for end in self.ends:
            end.close()


def run_bench(spec: BenchSpec) -> BenchReport:
    """Run one bench and return its report (raises BenchError when it cannot run)."""
    spec = spec.validate()
    sampler = ProcessSampler(spec.server_pid) if spec.server_pid else None
    coord = _Coordinator(spec, sampler)
    metrics_before = read_closed_sessions(spec.metrics_url) if spec.metrics_url else None
    aborted = True
    try:
        coord.start()
        connected_msgs = coord.gather("connected", spec.connect_timeout + spec.connections / 50 + PHASE_SLACK_S)
        connected = sum(m["ok"] for m in connected_msgs)
        failed = sum(m["failed"] for m in connected_msgs)
        if connected < 2:
            reasons = merge_counts(m["failures"] for m in connected_msgs)
            why = "; ".join(f"{count} {reason}" for reason, count in reasons.items())
            raise BenchError(
                f"only {connected} of {spec.connections} connections to {spec.target_text} succeeded"
                + (f" ({why})" if why else "")
            )
        missing = _warm_up(coord, spec, connected)
        start_at = time.time() + START_LEAD_S
        end_at = start_at + spec.duration
        coord.start_sampling()
        coord.broadcast("run", {"start_at": start_at, "end_at": end_at})
        sent_msgs = coord.gather("sent", START_LEAD_S + spec.duration + PHASE_SLACK_S)
        total_sent = sum(m["sent"] for m in sent_msgs)
        coord.broadcast("drain", {"total_sent": total_sent})
        done = coord.gather("done", spec.drain + PHASE_SLACK_S)
        aborted = False
    finally:
        coord.stop(aborted)
    metrics_after = read_closed_sessions(spec.metrics_url) if spec.metrics_url else None
    failures = merge_counts([*(m["failures"] for m in connected_msgs), *(m["lost"] for m in done)])
    kept = sum(int(m["open"]) for m in done)
    limit = explain_closures(
        failures=failures,
        kept=kept,
        shared_identity=certificate_name(spec.cert) if spec.tls else None,
        metrics_before=metrics_before,
        metrics_after=metrics_after,
    )
    return _report(spec, failed, missing, total_sent, done, sampler, failures, limit)


def _warm_up(coord: _Coordinator, spec: BenchSpec, connected: int) -> int:
    """Warm-up rounds until one delivers every SA or the budget is spent; returns SAs missing."""
    budget_end = time.monotonic() + spec.warmup
    while True:
        remaining = budget_end - time.monotonic()
        timeout = max(0.1, min(WARMUP_ROUND_S, remaining))
        coord.broadcast("warmup", {"expect_each": connected - 1, "timeout": timeout})
        replies = coord.gather("warm", timeout + PHASE_SLACK_S)
        missing = sum(int(m["missing"]) for m in replies)
        # Connections the server ended meanwhile no longer send: the next round expects fewer.
        connected = sum(int(m["open"]) for m in replies)
        if missing == 0 or time.monotonic() >= budget_end:
            if missing:
                logger.warning("warm-up incomplete: %d SAs missing", missing)
            return missing


def _report(
    spec: BenchSpec,
    failed: int,
    warm_missing: int,
    sent: int,
    done: list[dict[str, Any]],
    sampler: ProcessSampler | None,
    failures: dict[str, int],
    limit: str | None,
) -> BenchReport:
    connected = sum(int(m["open"]) for m in done)
    closed = sum(sum(m["lost"].values()) for m in done)
    delivered = sum(int(m["delivered"]) for m in done)
    expected = sum(int(m["expected"]) for m in done)
    samples: array[int] = array("q")
    for m in done:
        samples.extend(m["latency_us"])
    window = spec.duration
    return BenchReport(
        mode=spec.mode,
        proto=spec.proto,
        host=spec.address(0)[0],
        port=spec.address(0)[1],
        tls=spec.tls,
        clients=spec.clients if spec.mode == "fanout" else 1,
        receivers=spec.clients if spec.mode == "fanout" else spec.receivers,
        rate_hz=spec.rate if spec.mode == "fanout" else 0.0,
        duration_s=spec.duration,
        processes=len(done),
        window_s=window,
        drain_s=round(max((float(m["drain_s"]) for m in done), default=0.0), 3),
        connected=connected,
        connect_failures=failed + closed,
        warmup_missing=warm_missing,
        sent=sent,
        sent_per_s=round(sent / window, 1),
        expected=expected,
        delivered=delivered,
        delivered_per_s=round(delivered / window, 1),
        delivery_ratio=ratio(delivered, expected),
        latency=summarize_latency(samples),
        errors=sum(int(m["errors"]) for m in done) + failed,
        disconnects=sum(int(m["disconnects"]) for m in done),
        tool_cpu_percent=[round(float(m["cpu_percent"]), 1) for m in done],
        server=sampler.stats() if sampler is not None else None,
        counted_uids=run_uid_prefix(spec.run_id),
        other_events=sum(int(m["other_events"]) for m in done),
        closed_by_server=closed,
        failure_reasons=failures,
        targets=[f"{host}:{port}" for host, port in spec.targets],
        limit=limit,
    )
