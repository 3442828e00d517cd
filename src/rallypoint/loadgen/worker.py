"""A worker process: owns a slice of the bench connections and follows the coordinator's phases.

Phases (coordinator message -> worker reply), all over one multiprocessing pipe:

1. (start)                      -> ("connected", {"ok", "failed", "failures"})
2. ("warmup", {"expect_each", "timeout"}) -> ("warm", {"missing", "open"})   every connection sends
   one plain SA; repeated while SAs go missing (a server may not have registered a connection
   yet when the first round arrives, or closed some), within the --warmup budget
3. ("run", {"start_at", "end_at"}) -> ("sent", {"sent"})    counters reset, stamped sends
4. ("drain", {"total_sent"})    -> ("done", {...})          wait for the expected arrivals

A connection the server ends (refused past a limit, reset, closed) leaves the population at once:
targets are recomputed over open connections, and the reply lists why each one was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from .client import BenchConnection, Tally, client_ssl_context, open_connection
from .diagnosis import NegotiationFailed, describe_failure
from .events import TemplateSet, make_identity, stamp
from .report import LatencySampler
from .spec import BenchSpec

logger = logging.getLogger(__name__)

CONNECT_CONCURRENCY = 128
BLAST_BATCH = 64
REFRESH_EVERY_S = 1.0
# Sends due within this much of now go out together instead of arming one timer each.
PACE_SLACK_S = 0.0005
SETTLE_QUIET_S = 0.2


def worker_main(spec: BenchSpec, indices: list[int], chan: Connection) -> None:
    """Process entry point: run the phases on uvloop when available."""
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(_Worker(spec, indices, chan).run())
    except Exception as exc:  # the coordinator reports it; a traceback here would be lost
        logger.exception("bench worker failed")
        with contextlib.suppress(OSError):
            chan.send(("failed", {"error": f"{type(exc).__name__}: {exc}"}))
    finally:
        chan.close()


class _Aborted(Exception):
    """The coordinator gave up (another worker failed)."""


class _Worker:
    def __init__(self, spec: BenchSpec, indices: list[int], chan: Connection) -> None:
        self.spec = spec
        self.indices = indices
        self.chan = chan
        self.identities = [make_identity(i, spec.run_id) for i in indices]
        self.templates = TemplateSet(self.identities, spec.proto)
        self.tally = Tally(LatencySampler())
        self.conns: list[BenchConnection] = []
        self._cpu_mark = (0.0, 0.0)

    async def _recv(self, *expected: str) -> tuple[str, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        kind, payload = await loop.run_in_executor(None, self.chan.recv)
        if kind == "abort":
            raise _Aborted
        if kind not in expected:
            raise RuntimeError(f"coordinator sent {kind!r}, expected one of {expected!r}")
        return kind, dict(payload)

    def _is_sender(self, conn: BenchConnection) -> bool:
        return self.spec.mode == "fanout" or conn.ident.index == 0

    def _counts(self, conn: BenchConnection) -> bool:
        return self.spec.mode == "fanout" or conn.ident.index != 0

    async def run(self) -> None:
        try:
            await self._connect()
            kind, msg = await self._recv("warmup", "run")
            while kind == "warmup":
                await self._warmup(msg)
                kind, msg = await self._recv("warmup", "run")
            await self._measure(msg)
            await self._drain((await self._recv("drain"))[1])
        except _Aborted:
            logger.debug("coordinator aborted the run")
        finally:
            for conn in self.conns:
                conn.close()

    async def _connect(self) -> None:
        spec = self.spec
        ssl_ctx = client_ssl_context(spec.ca, spec.cert, spec.key) if spec.tls else None
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        failures: Counter[str] = Counter()

        async def one(ident_index: int) -> None:
            conn = BenchConnection(self.identities[ident_index], spec.proto, self.tally)
            async with gate:
                try:
                    host, port = spec.address(conn.ident.index)
                    await open_connection(conn, host, port, ssl_ctx, spec.connect_timeout)
                except (OSError, TimeoutError, NegotiationFailed) as exc:
                    failures[describe_failure(exc)] += 1
                    conn.close()
                    logger.debug("connect %s failed: %s", conn.ident.callsign, exc)
                    return
            self.conns.append(conn)

        async with asyncio.TaskGroup() as tg:
            for i in range(len(self.identities)):
                tg.create_task(one(i))
        self.conns.sort(key=lambda c: c.ident.index)
        failed = sum(failures.values())
        self.chan.send(("connected", {"ok": len(self.conns), "failed": failed, "failures": dict(failures)}))

    def _open(self) -> list[BenchConnection]:
        return [c for c in self.conns if not c.closed]

    def _lost(self) -> dict[str, int]:
        """Why the server ended connections that had been established, by reason."""
        return dict(Counter(c.lost for c in self.conns if c.lost is not None))

    async def _await(self, target: Callable[[], int], timeout: float) -> None:
        """Wait until ``tally.delivered`` reaches ``target()``, re-evaluated whenever a connection is lost."""
        tally = self.tally
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    tally.aim(target())
                    if tally.delivered >= tally.target:
                        return
                    await tally.reached.wait()

    async def _warmup(self, msg: dict[str, Any]) -> None:
        """One warm-up round: everyone sends a plain SA, then wait for everyone else's."""
        now_ms = time.time_ns() // 1_000_000
        self.tally.reset()
        for conn in self.conns:
            conn.received = 0
        expect_each = int(msg["expect_each"])
        lost_before = len(self.conns) - len(self._open())

        def target() -> int:
            # Each connection lost here since the round began sends nothing to the others.
            open_now = self._open()
            lost_here = len(self.conns) - len(open_now) - lost_before
            return len(open_now) * max(0, expect_each - lost_here)

        for conn in self._open():
            conn.write(self.templates.warmup_event(conn.ident, now_ms))
        await self._await(target, float(msg["timeout"]))
        missing = max(0, target() - self.tally.delivered)
        self.chan.send(("warm", {"missing": missing, "open": len(self._open())}))

    async def _settle(self, until: float) -> None:
        """Let warm-up stragglers arrive (no delivery for SETTLE_QUIET_S) before counting starts."""
        while time.monotonic() + SETTLE_QUIET_S < until:
            before = self.tally.delivered
            await asyncio.sleep(SETTLE_QUIET_S)
            if self.tally.delivered == before:
                return

    async def _measure(self, msg: dict[str, Any]) -> None:
        offset = time.monotonic() - time.time()
        start = float(msg["start_at"]) + offset
        end = float(msg["end_at"]) + offset
        await self._settle(start)
        self._cpu_mark = (time.process_time(), time.monotonic())
        self.tally.reset()
        for conn in self.conns:
            conn.sent = 0
            conn.received = 0
            conn.other = 0
            conn.counting = self._counts(conn) and not conn.closed
        self.templates.refresh(time.time_ns() // 1_000_000)
        senders = [c for c in self.conns if self._is_sender(c)]
        if self.spec.mode == "blast":
            for conn in senders:
                await self._blast(conn, start, end)
        else:
            await self._paced(senders, start, end)
        self.chan.send(("sent", {"sent": sum(c.sent for c in self.conns)}))

    def _maybe_refresh(self) -> None:
        now_ms = time.time_ns() // 1_000_000
        if now_ms - self.templates.refreshed_ms >= REFRESH_EVERY_S * 1000:
            self.templates.refresh(now_ms)

    async def _paced(self, senders: list[BenchConnection], start: float, end: float) -> None:
        period = 1.0 / self.spec.rate
        total = self.spec.clients
        # Client i sends at start + (k + i/N) * period: phases are spread over the whole
        # population, not just this worker's share.
        schedule = sorted(((c.ident.index / total) * period, c) for c in senders)
        parts = self.templates.parts
        rounds = 0
        while True:
            base = start + rounds * period
            if base >= end:
                return
            for offset, conn in schedule:
                due = base + offset
                if due >= end:
                    return
                delay = due - time.monotonic()
                if delay > PACE_SLACK_S:
                    await asyncio.sleep(delay)
                if conn.closed:
                    continue
                conn.write(stamp(parts[conn.ident.index], time.time_ns()))
                conn.sent += 1
            rounds += 1
            self._maybe_refresh()
            parts = self.templates.parts

    async def _blast(self, conn: BenchConnection, start: float, end: float) -> None:
        delay = start - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        index = conn.ident.index
        while not conn.closed:
            now = time.monotonic()
            if now >= end:
                return
            if conn.paused:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(end - now):
                        await conn.writable()
                continue
            one = stamp(self.templates.parts[index], time.time_ns())
            conn.write(one * BLAST_BATCH)
            conn.sent += BLAST_BATCH
            self._maybe_refresh()
            # Receivers in this process need the loop too.
            await asyncio.sleep(0)

    def _cpu_percent(self) -> float:
        cpu0, wall0 = self._cpu_mark
        wall = time.monotonic() - wall0
        return 100.0 * (time.process_time() - cpu0) / wall if wall > 0 else 0.0

    def _local_expected(self, total_sent: int) -> int:
        counting = [c for c in self.conns if c.counting and not c.closed]
        if self.spec.mode == "fanout":
            return len(counting) * total_sent - sum(c.sent for c in counting)
        return len(counting) * total_sent

    async def _drain(self, msg: dict[str, Any]) -> None:
        began = time.monotonic()
        total_sent = int(msg["total_sent"])
        await self._await(lambda: self._local_expected(total_sent), self.spec.drain)
        target = self._local_expected(total_sent)
        tally = self.tally
        self.chan.send(
            (
                "done",
                {
                    "delivered": tally.delivered,
                    "expected": target,
                    "open": len(self._open()),
                    "lost": self._lost(),
                    "other_events": sum(c.other for c in self.conns if c.counting and not c.closed),
                    "latency_us": tally.sampler.samples,
                    "errors": tally.errors,
                    "disconnects": tally.disconnects,
                    "drain_s": time.monotonic() - began,
                    "cpu_percent": self._cpu_percent(),
                },
            )
        )
