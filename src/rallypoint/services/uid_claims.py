"""Cluster-wide uid claims: of two principals binding one device uid at once on two nodes, one keeps it.

Each node decides a first device SA at once (``security/policy.py``), so two nodes can each accept a
different principal for the same unheld uid in the same moment. This feature settles it through the
NATS KV bucket ``rp_<cluster>_uids`` (key: the uid, value: the principal): the node that bound the
uid *creates* the key, which NATS does for exactly one writer; every node watches the bucket and
makes the recorded principal the holder (:meth:`IdentityPolicy.settle`).

Until the claim is decided, the uid's reports accepted here wait in a :class:`ClaimHold`
(``services/claim_hold.py``): nothing of them is routed, pictured, stored or published. Won, they
are released in order; lost, they are dropped, each counted and logged as a ``spoofed_uid`` refusal,
and the client's session is closed (its binding would otherwise route the holder's addressed
traffic to it); reconnecting, it is refused ``spoofed_uid`` like any other principal. So no report
of a loser reaches anyone on any node. A claim still undecided after the hold's time (NATS away or
slow) has its reports released: this node decides alone meanwhile. Every node also drops a loser's
report of the uid from its picture (one released undecided), so the holder's next report is what
everyone shows.

Claims are kept in the bucket while it exists (a restarted node learns every holder from it); to
release a uid, delete its key (``nats kv del rp_<cluster>_uids <uid>``). A claim that NATS could not
take (NATS away) waits and is sent again; at most ``max_pending`` wait, then the oldest is dropped,
counted and logged, and that uid stays decided by this node alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import nats.errors
import nats.js.errors
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from starlette.routing import BaseRoute

from rallypoint.bus.base import MessageBus
from rallypoint.bus.latest import key_of, uid_of
from rallypoint.bus.nats import NatsBus
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.security.policy import SPOOFED_UID, IdentityPolicy
from rallypoint.services.claim_hold import ClaimHold, Report
from rallypoint.services.ingest import Ingest
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.presence import Presence

log = logging.getLogger(__name__)

_TRANSIENT = (nats.errors.Error, asyncio.TimeoutError, OSError)
RETRY_S = 1.0


class Session(Protocol):
    """What this feature needs of a live session (``transport.context.SessionSet`` holds them)."""

    @property
    def id(self) -> str: ...

    def close(self, reason: str, *, abort: bool = False) -> None: ...


class UidClaims:
    """A node feature: sends this node's new uid bindings to NATS and applies the cluster's holders."""

    def __init__(
        self,
        *,
        bus: NatsBus,
        identity: IdentityPolicy,
        presence: Presence,
        sessions: Iterable[Session],
        metrics: ServerMetrics,
        ingest: Ingest,
        live: Callable[[str], bool],
        hold: ClaimHold | None = None,
        max_pending: int = 10_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._identity = identity
        self._presence = presence
        self._sessions = sessions
        self._metrics = metrics
        self._ingest = ingest
        self._live = live
        self.hold = hold if hold is not None else ClaimHold()
        self._now = now
        self._max_pending = max_pending
        self._pending: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._timer = asyncio.Event()  # a new hold: the expiry loop has an earlier deadline to wait for
        self._stop = asyncio.Event()
        self._watcher: KeyValue.KeyWatcher | None = None
        # claimed: keys this node created; lost: its claims another principal had made first;
        # replaced: holders changed here by the cluster's decision; closed: sessions closed for it.
        self.claimed = self.lost = self.replaced = self.closed = self.dropped = self.failed = 0
        identity.on_claim(self.submit)
        # From now on the reports of a uid being claimed wait in the hold (one membership test per event).
        ingest.hold_reports(self.hold.holds, self.hold.keep)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        """No HTTP routes."""
        return ()

    @property
    def pending(self) -> int:
        """Claims waiting to be sent to NATS."""
        return len(self._pending)

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """Not an event hook."""
        return None

    def submit(self, uid: str, principal: str) -> None:
        """``principal`` bound ``uid`` here and nobody held it: claim it for the cluster (never blocks).

        Called inside identity binding, before the report that bound the uid goes on: that report and
        the uid's next ones are held until the claim is decided.
        """
        if uid not in self._pending and len(self._pending) >= self._max_pending:
            oldest = next(iter(self._pending))
            del self._pending[oldest]
            self.dropped += 1
            log.warning("uid claim dropped: too many waiting", extra={"uid": oldest, "limit": self._max_pending})
            self.hold.give_up(oldest)
        self._pending[uid] = principal
        self.hold.begin(uid, principal, self._now())
        self._timer.set()
        self._wake.set()

    def counters(self) -> list[tuple[str, str, float]]:
        """For ``ServerMetrics.add_counters``: what the hold of undecided claims did."""
        h = self.hold.statistics()
        return [
            (
                "rallypoint_uid_claim_reports_held_total",
                "Reports of a uid held while this node's claim of it was undecided",
                float(h.held),
            ),
            (
                "rallypoint_uid_claim_reports_released_total",
                "Held reports released (claim won, or undecided past the hold time)",
                float(h.released),
            ),
            (
                "rallypoint_uid_claim_reports_overflowed_total",
                "Held reports dropped because too many waited for one uid",
                float(h.overflowed),
            ),
            (
                "rallypoint_uid_claim_reports_abandoned_total",
                "Held reports dropped because their session ended before the decision",
                float(h.abandoned),
            ),
            (
                "rallypoint_uid_claim_holds_expired_total",
                "Uid holds released undecided (NATS did not answer in time, or too many uids held)",
                float(h.expired),
            ),
        ]

    async def run(self) -> None:
        """Send claims and apply the bucket's holders until :meth:`close`."""
        kv = self._bus.uid_bucket()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._send(kv), name="uid-claims-send")
            tg.create_task(self._watch(kv), name="uid-claims-watch")
            tg.create_task(self.release_undecided(), name="uid-claims-expire")

    async def close(self) -> None:
        """Stop the loops (claims still waiting are dropped: this node alone decided those uids)."""
        self._stop.set()
        self._wake.set()
        self._timer.set()
        if self._watcher is not None:
            with contextlib.suppress(*_TRANSIENT, nats.errors.BadSubscriptionError):
                await self._watcher.stop()  # type: ignore[no-untyped-call]

    async def _send(self, kv: KeyValue) -> None:
        while not self._stop.is_set():
            await self._wake.wait()
            self._wake.clear()
            while self._pending and not self._stop.is_set():
                uid, principal = next(iter(self._pending.items()))
                try:
                    holder = await self._claim(kv, uid, principal)
                except _TRANSIENT as exc:
                    self.failed += 1
                    log.warning("uid claim not sent; retrying", extra={"uid": uid, "error": repr(exc)[:200]})
                    # NATS is away: try again after a pause, or sooner when another claim arrives.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), RETRY_S)
                    continue
                if self._pending.get(uid) == principal:
                    del self._pending[uid]
                if holder != principal:
                    self.lost += 1
                self.decided(uid, holder)

    async def _claim(self, kv: KeyValue, uid: str, principal: str) -> str:
        """Create the uid's key for ``principal``; returns the principal the bucket names (first claim wins)."""
        key = key_of(uid)
        try:
            await kv.create(key, principal.encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            entry = await kv.get(key)
            return entry.value.decode() if entry.value else principal
        self.claimed += 1
        return principal

    async def _watch(self, kv: KeyValue) -> None:
        while not self._stop.is_set():
            try:
                watcher = await kv.watchall()
            except _TRANSIENT as exc:
                log.warning("uid claims not watched; retrying", extra={"error": repr(exc)[:200]})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), RETRY_S)
                continue
            self._watcher = watcher
            if self._stop.is_set():
                # close() ran while the watch was being made: it could not stop this one.
                with contextlib.suppress(*_TRANSIENT, nats.errors.BadSubscriptionError):
                    await watcher.stop()  # type: ignore[no-untyped-call]
                return
            # Every existing claim first (a node that starts learns every holder), then each new one.
            async for entry in watcher:
                # None marks the end of the entries that existed when the watch began.
                if entry is None or entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
                    continue
                self.decided(uid_of(entry.key), entry.value.decode())
            if not self._stop.is_set():
                log.warning("uid claims watch ended; watching again")

    async def release_undecided(self) -> None:
        """Until :meth:`close`, release the holds whose claim stayed undecided for the hold's time (NATS away)."""
        while not self._stop.is_set():
            deadline = self.hold.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self._now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer.wait(), timeout)
            self._timer.clear()
            if self._stop.is_set():
                return
            for uid, reports in self.hold.expire(self._now(), self._live):
                log.warning(
                    "uid claim undecided: its reports released, this node decides alone",
                    extra={"uid": uid, "reports": len(reports), "hold_s": self.hold.hold_s},
                )
                self._release(reports)

    def _release(self, reports: list[Report]) -> None:
        for envelope, claim in reports:
            self._ingest.admit(envelope, claim)

    def decided(self, uid: str, holder: str) -> None:
        """The cluster decided that ``holder`` holds ``uid``: make it the holder here.

        Held reports of the uid are released if this node's claim won, else dropped as refused; what
        another principal put in the picture under the uid is dropped and its sessions here closed.
        """
        refused: dict[str, int] = {}  # session -> its held reports dropped
        held_by = self.hold.principal_of(uid)
        if held_by == holder:
            self._release(self.hold.won(uid, self._live))
        elif held_by is not None:
            for envelope, _ in self.hold.lose(uid):
                session_id = envelope.origin.session_id
                refused[session_id] = refused.get(session_id, 0) + 1
        previous = self._identity.settle(uid, holder)
        if previous is None and not refused:
            return
        self.replaced += previous is not None
        losers = set(self._presence.disown(uid, holder))
        log.warning(
            "uid held by another principal in the cluster",
            extra={
                "uid": uid,
                "holder": holder,
                "replaced": previous,
                "sessions": len(losers | refused.keys()),
                "held_reports_dropped": sum(refused.values()),
            },
        )
        detail = f"uid {uid!r} is held by another principal ({holder}), who claimed it first in the cluster"
        live = {session.id: session for session in self._sessions if session.id in losers or session.id in refused}
        # One refusal per held report that reached nobody (its session may have ended since), and one
        # for each session whose SA left the picture.
        for session_id in refused.keys() | losers:
            session = live.get(session_id)
            transport = getattr(session, "transport_name", "stream")
            rejected = refused.get(session_id, 1)
            self._metrics.rejected.labels(SPOOFED_UID, transport).inc(rejected)
            log.warning(
                "input rejected",
                extra={"session": session_id, "reason": SPOOFED_UID, "detail": detail, "reports": rejected},
            )
            if session is not None:
                self.closed += 1
                session.close(SPOOFED_UID)


def uid_claims_for(
    bus: MessageBus,
    *,
    identity: IdentityPolicy,
    presence: Presence,
    sessions: Iterable[Session],
    metrics: ServerMetrics,
    ingest: Ingest,
    directory: Directory,
) -> UidClaims | None:
    """The uid claims feature of a cluster node (a NATS bus); a lone node decides uids by itself (and holds nothing)."""
    if not isinstance(bus, NatsBus):
        return None
    claims = UidClaims(
        bus=bus,
        identity=identity,
        presence=presence,
        sessions=sessions,
        metrics=metrics,
        ingest=ingest,
        # A streaming session is in the directory while it is open.
        live=lambda session_id: directory.get(session_id) is not None,
    )
    metrics.add_counters(claims.counters)
    return claims
