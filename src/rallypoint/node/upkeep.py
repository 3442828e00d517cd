"""Background upkeep of a running node: reload, revocations, account changes, idle and slow sessions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, Metric

from rallypoint.model.cot_type import PERSISTENT_PREFIXES
from rallypoint.routing.envelope import Envelope, Origin

if TYPE_CHECKING:
    from rallypoint.node.core import Node

log = logging.getLogger("rallypoint")


async def load_picture(node: Node) -> None:
    """Reload the persisted, non-stale map items the picture held, so late joiners see them after a restart."""
    now = node.clock.now_ms()
    from rallypoint.protocol.limits import Limits as _Limits
    from rallypoint.protocol.xml_codec import parse_event

    limits = _Limits(max_event_bytes=node.settings.max_event_bytes)
    for stored in await node.store.latest(now_ms=now, types_prefix=PERSISTENT_PREFIXES):
        try:
            event = parse_event(stored.xml, limits)
        except Exception:
            log.exception("cannot reload stored event", extra={"uid": stored.uid})
            continue
        # latest() holds picture rows only: broadcast and accepted into the picture (storage.base).
        node.presence.items[event.uid] = Envelope(event, Origin(session_id="storage", groups=stored.groups), now)



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


async def watch_files(node: Node, failures: UpkeepFailures | None = None) -> None:
    """Apply revocations and account changes made by the CLI (another process) within seconds.

    Both live in files; a stat call every 2 s is the cheapest portable change detection. A step that
    fails is retried on the next tick: the accounts stamp only advances once a reload succeeded.
    """
    if failures is None:
        failures = UpkeepFailures()
        node.metrics.add_collector(failures.families)
    while not node.stop_event.is_set():
        try:
            await asyncio.wait_for(node.stop_event.wait(), timeout=2.0)
        except TimeoutError:
            pass
        try:
            enforce_revocations(node)
        except Exception as exc:  # noqa: BLE001 - any failure here is retried, never fatal
            failures.failed("revocations", exc)
        else:
            failures.succeeded("revocations")
        try:
            current = await node.users.stamp()
            if current != node.users_stamp:
                await apply_account_changes(node)
                node.users_stamp = current
        except Exception as exc:  # noqa: BLE001 - any failure here is retried, never fatal
            failures.failed("accounts", exc)
        else:
            failures.succeeded("accounts")


def enforce_revocations(node: Node) -> None:
    """Reload the revocation list if it changed and abort sessions whose certificate it now lists."""
    if not node.revocations.refresh():
        return
    log.info("revocation list changed", extra={"revoked": len(node.revocations.revoked)})
    for session in node.ctx.sessions:
        if node.revocations.is_revoked(session.cert_serial):
            log.warning("disconnecting revoked client", extra={"session": session.id})
            node.auditor.record("server", "cert.enforce", session.principal or "-", {"session": session.id})
            session.close("revoked", abort=True)


async def apply_account_changes(node: Node) -> None:
    """Reload accounts from the store and apply them to live sessions (disable, regroup)."""
    node.accounts.load(await node.users.list())
    for session in node.ctx.sessions:
        if session.principal is None:
            continue
        access = node.accounts.access_for(session.principal)
        if access is None:
            log.warning("disconnecting disabled account", extra={"session": session.id})
            session.close("disabled", abort=True)
        elif session.regroup(access.write - session.inactive_groups[0], access.read - session.inactive_groups[1]):
            log.info("groups changed", extra={"session": session.id, "principal": session.principal})


async def sweep(node: Node) -> None:
    """Expire stale items and close idle sessions every few seconds."""
    idle = node.settings.idle_timeout_s
    timeouts = [t for t in (idle, node.settings.frame_timeout_s, node.settings.slow_receiver_timeout_s) if t > 0]
    interval = min(5.0, max(0.25, min(timeouts, default=10.0) / 4))
    while not node.stop_event.is_set():
        try:
            await asyncio.wait_for(node.stop_event.wait(), timeout=interval)
        except TimeoutError:
            pass
        node.presence.expire(node.clock.now_ms())
        now = node.clock.monotonic()
        frame_cutoff = now - node.settings.frame_timeout_s
        slow_cutoff = now - node.settings.slow_receiver_timeout_s
        for session in node.ctx.sessions:
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

