"""Feeds the audit log from synchronous code paths (connections) without blocking the loop."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from rallypoint.clock import Clock
from rallypoint.security.audit import AuditLog

log = logging.getLogger(__name__)


class AuditRecorder:
    """Bounded queue in front of the audit log; overflow policy: drop newest, counted and logged.

    An entry the log refuses (a caller's malformed action, a storage failure) is counted in
    ``failed`` and logged; the recorder goes on with the next one, so one bad entry cannot stop
    the node whose task group runs this recorder.
    """

    def __init__(self, audit: AuditLog, clock: Clock, *, max_pending: int = 10_000) -> None:
        self._audit = audit
        self._clock = clock
        self._pending: deque[tuple[str, str, str, dict[str, str], int]] = deque()
        self._max_pending = max_pending
        self._wake = asyncio.Event()
        self._stopping = False
        self.dropped = 0
        self.written = 0
        self.failed = 0

    def record(self, actor: str, action: str, target: str, detail: dict[str, str] | None = None) -> None:
        """Queue an entry (timestamped now); never blocks."""
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            log.error("audit queue full, entry dropped", extra={"action": action, "target": target})
            return
        self._pending.append((actor, action, target, detail or {}, self._clock.now_ms()))
        self._wake.set()

    async def append(self, actor: str, action: str, target: str, detail: dict[str, str]) -> None:
        """Async hook form (enrollment): queued like the rest so entries keep their order."""
        self.record(actor, action, target, detail)

    async def run(self) -> None:
        """Write queued entries until :meth:`stop`, then write what is left."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                actor, action, target, detail, ts = self._pending.popleft()
                try:
                    await self._audit.append(actor, action, target, detail, now_ms=ts)
                except Exception:
                    # Deliberately broad: whatever one entry does wrong, later entries and the node go on.
                    self.failed += 1
                    log.exception("audit entry not written", extra={"action": action[:64]})
                    continue
                self.written += 1
            if self._stopping:
                return

    def stop(self) -> None:
        """Finish: :meth:`run` writes what is queued, then returns."""
        self._stopping = True
        self._wake.set()

    def counters(self) -> list[tuple[str, str, float]]:
        """``(name, help, value)`` counters for the metrics endpoint."""
        return [
            ("rallypoint_audit_written", "Audit entries written", float(self.written)),
            ("rallypoint_audit_dropped", "Audit entries dropped because the queue was full", float(self.dropped)),
            ("rallypoint_audit_failed", "Audit entries the log refused or could not store", float(self.failed)),
        ]
