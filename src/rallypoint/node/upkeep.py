"""Background upkeep of a running node: reload, revocations, account changes, idle and slow sessions.

Each task gets only the components it uses (explicit parameters or a small frozen struct), so it
can be run and tested on its own with a ``ManualClock``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, Metric

from rallypoint.clock import Clock
from rallypoint.model.cot_type import PERSISTENT_PREFIXES
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.security.accounts import AccountCache
from rallypoint.security.revocation import RevocationWatcher
from rallypoint.security.users import UserAccounts
from rallypoint.services.auditing import AuditRecorder
from rallypoint.services.presence import Presence
from rallypoint.storage.base import EventStore
from rallypoint.transport.context import SessionSet

log = logging.getLogger("rallypoint")


async def load_picture(store: EventStore, presence: Presence, clock: Clock, limits: Limits) -> None:
    """Reload the persisted, non-stale map items the picture held, so late joiners see them after a restart."""
    now = clock.now_ms()
    for stored in await store.latest(now_ms=now, types_prefix=PERSISTENT_PREFIXES):
        try:
            event = parse_event(stored.xml, limits)
        except Exception:
            log.exception("cannot reload stored event", extra={"uid": stored.uid})
            continue
        # latest() holds picture rows only: broadcast and accepted into the picture (storage.base).
        presence.items[event.uid] = Envelope(event, Origin(session_id="storage", groups=stored.groups), now)


class UpkeepFailures:
    """Failed upkeep steps, by step; exported as ``rallypoint_upkeep_failures_total{step}``.

    A step that raises is logged and counted, and the loop carries on: an unreadable revocation list
    or a malformed account row must not stop the node (it runs in the node's task group).
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {"revocations": 0, "accounts": 0}
        self._failing: set[str] = set()

    def failed(self, step: str, exc: Exception) -> None:
        """Count one failure; the traceback is logged once per run of failures, a warning after that."""
        self.counts[step] = self.counts.get(step, 0) + 1
        if step in self._failing:
            log.warning("upkeep step still failing", extra={"step": step, "error": repr(exc)[:300]})
        else:
            self._failing.add(step)
            log.error("upkeep step failed; retrying", extra={"step": step}, exc_info=exc)

    def succeeded(self, step: str) -> None:
        """Note a success (the next failure logs its traceback again)."""
        if step in self._failing:
            self._failing.discard(step)
            log.info("upkeep step recovered", extra={"step": step})

    def families(self) -> Iterator[Metric]:
        """For ``ServerMetrics.add_collector``."""
        family = CounterMetricFamily(
            "rallypoint_upkeep_failures", "Background upkeep steps that raised (and were retried), by step",
            labels=["step"],
        )
        for step, count in sorted(self.counts.items()):
            family.add_metric([step], count)
        yield family


@dataclass(frozen=True)
class RevocationEnforcer:
    """Aborts sessions whose client certificate the revocation list names."""

    revocations: RevocationWatcher
    sessions: SessionSet
    auditor: AuditRecorder

    def enforce(self) -> None:
        """Reload the revocation list if it changed and abort sessions whose certificate it now lists."""
        if not self.revocations.refresh():
            return
        log.info("revocation list changed", extra={"revoked": len(self.revocations.revoked)})
        for session in self.sessions:
            if self.revocations.is_revoked(session.cert_serial):
                log.warning("disconnecting revoked client", extra={"session": session.id})
                self.auditor.record("server", "cert.enforce", session.principal or "-", {"session": session.id})
                session.close("revoked", abort=True)


@dataclass(frozen=True)
class AccountSync:
    """Keeps the node's account cache and its live sessions in step with the account store."""

    users: UserAccounts
    accounts: AccountCache
    sessions: SessionSet

    async def load(self) -> object:
        """Fill the cache at start; returns the store's stamp to compare later ones with."""
        self.accounts.load(await self.users.list())
        return await self.users.stamp()

    async def apply(self) -> None:
        """Reload accounts from the store and apply them to live sessions (disable, regroup)."""
        self.accounts.load(await self.users.list())
        for session in self.sessions:
            if session.principal is None:
                continue
            access = self.accounts.access_for(session.principal)
            if access is None:
                log.warning("disconnecting disabled account", extra={"session": session.id})
                session.close("disabled", abort=True)
            elif session.regroup(access.write - session.inactive_groups[0], access.read - session.inactive_groups[1]):
                log.info("groups changed", extra={"session": session.id, "principal": session.principal})


async def watch_files(
    revocations: RevocationEnforcer, accounts: AccountSync, *, stamp: object, failures: UpkeepFailures,
    stop: asyncio.Event,
) -> None:
    """Apply revocations and account changes made by the CLI (another process) within seconds.

    Both live in files; a stat call every 2 s is the cheapest portable change detection. A step that
    fails is retried on the next tick: the accounts ``stamp`` only advances once a reload succeeded.
    """
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=2.0)
        except TimeoutError:
            pass
        try:
            revocations.enforce()
        except Exception as exc:  # noqa: BLE001 - any failure here is retried, never fatal
            failures.failed("revocations", exc)
        else:
            failures.succeeded("revocations")
        try:
            current = await accounts.users.stamp()
            if current != stamp:
                await accounts.apply()
                stamp = current
        except Exception as exc:  # noqa: BLE001 - any failure here is retried, never fatal
            failures.failed("accounts", exc)
        else:
            failures.succeeded("accounts")


@dataclass(frozen=True)
class SessionSweep:
    """Expires stale map items and closes idle, stalled and never-finishing sessions."""

    presence: Presence
    sessions: SessionSet
    clock: Clock
    idle_timeout_s: float
    frame_timeout_s: float
    slow_receiver_timeout_s: float

    def interval(self) -> float:
        """A quarter of the shortest timeout, between 0.25 s and 5 s (10 s when none is set)."""
        timeouts = [t for t in (self.idle_timeout_s, self.frame_timeout_s, self.slow_receiver_timeout_s) if t > 0]
        return min(5.0, max(0.25, min(timeouts, default=10.0) / 4))

    def once(self) -> None:
        """One pass over the picture and the open sessions."""
        self.presence.expire(self.clock.now_ms())
        idle = self.idle_timeout_s
        now = self.clock.monotonic()
        frame_cutoff = now - self.frame_timeout_s
        slow_cutoff = now - self.slow_receiver_timeout_s
        for session in self.sessions:
            if idle > 0 and session.last_rx < now - idle:
                session.close("idle_timeout")
            elif session.paused_since is not None and session.paused_since < slow_cutoff:
                # Its outbox only coalesces; a receiver that reads nothing for this long is gone.
                log.warning(
                    "disconnecting receiver that stopped reading",
                    extra={"session": session.id, "paused_s": round(now - session.paused_since, 1)},
                )
                session.close("slow_receiver", abort=True)
            elif session.partial_since is not None and session.partial_since < frame_cutoff:
                log.warning("disconnecting client that never finishes its event", extra={"session": session.id})
                session.close("slow_frame", abort=True)


async def sweep(task: SessionSweep, stop: asyncio.Event) -> None:
    """Run ``task`` every few seconds until ``stop`` is set."""
    interval = task.interval()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
        task.once()
