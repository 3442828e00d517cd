"""The link budget of one stream session: what may go now, thinned positions held per uid, retry timing.

Only sessions with a byte budget have one (``session_limits.budget_policy``). The writing side asks
it for a decision per frame; positions the budget thins are held here (the latest per uid) until
thinning lets that uid go, and a timer calls the writing side back when the budget has refilled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rallypoint.clock import Clock
from rallypoint.delivery.budget import Decision, HeldReports, ThinningPolicy
from rallypoint.model.cot_type import COALESCED_CLASSES, DELETE, Priority
from rallypoint.routing.envelope import Envelope

# Longest wait before a budgeted session looks at its queue again (bounds a timer on odd input).
_MAX_RETRY_S = 60.0


class Pacing:
    """Budget decisions, held reports and the retry timer of one session; calls ``on_due`` when due."""

    __slots__ = ("_clock", "_held", "_max_items", "_on_due", "_retry", "_retry_at", "policy")

    def __init__(self, policy: ThinningPolicy, clock: Clock, *, max_items: int, on_due: Callable[[], None]) -> None:
        self.policy = policy
        self._clock = clock
        self._max_items = max_items
        self._on_due = on_due
        # Created on the first thinned position: most budgeted sessions never thin.
        self._held: HeldReports | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._retry_at = 0.0

    # --- decisions ---------------------------------------------------------------------------
    def decide(self, envelope: Envelope, size: int, priority: Priority) -> Decision:
        """Send, defer or skip (thin) one frame of ``size`` bytes."""
        return self.policy.decide(envelope, size, self._clock.monotonic(), priority=priority)

    def retry_in(self, envelope: Envelope, size: int, priority: Priority) -> float:
        """Seconds until the budget could pay for a deferred frame."""
        return self.policy.retry_in(envelope, size, self._clock.monotonic(), priority=priority)

    def pay_reply(self, nbytes: int) -> float | None:
        """Charge a protocol reply; None when paid, else seconds to wait for the budget."""
        # A reply larger than the whole bucket would wait forever; none is (the burst holds an event).
        size = min(nbytes, self.policy.budget.burst_bytes)
        now = self._clock.monotonic()
        if self.policy.spend_urgent(size, now):
            return None
        return self.policy.budget.wait_s(size, now)

    def refund(self, nbytes: int) -> None:
        """Give back what a write did not use (compression saved it)."""
        self.policy.refund(nbytes)

    # --- held reports ------------------------------------------------------------------------
    @property
    def holding(self) -> bool:
        """Whether any thinned position is held (the per-event path checks this first)."""
        return bool(self._held)

    def supersede(self, envelope: Envelope) -> None:
        """Forget the held report this envelope replaces (a newer report, or a delete of its item)."""
        held = self._held
        if not held:
            return
        event = envelope.event
        if event.type == DELETE and event.detail.link_uid is not None:
            # The held report would bring the deleted item back.
            held.discard(event.detail.link_uid)
        elif envelope.priority in COALESCED_CLASSES:
            held.discard(event.uid)

    def hold(self, envelope: Envelope, priority: Priority) -> float | None:
        """Keep a thinned position (if its uid stops reporting, it must still go); seconds until one is due."""
        held = self._held
        if held is None:
            held = self._held = HeldReports(self._max_items)
        held.hold(envelope, priority)
        return held.due_in(self.policy, self._clock.monotonic())

    def held_uids(self) -> list[str]:
        """Uids whose latest report is held, oldest first."""
        return self._held.uids() if self._held is not None else []

    def due_in(self) -> float | None:
        """Seconds until thinning lets a held report go, or None when none is held."""
        return self._held.due_in(self.policy, self._clock.monotonic()) if self._held else None

    def release(self) -> list[Envelope]:
        """Held reports thinning lets go now."""
        return self._held.release(self.policy, self._clock.monotonic()) if self._held else []

    # --- retry timer -------------------------------------------------------------------------
    @property
    def retry_scheduled(self) -> bool:
        return self._retry is not None

    def schedule(self, delay: float) -> None:
        """Call ``on_due`` in ``delay`` seconds, unless a call is already due sooner."""
        loop = asyncio.get_running_loop()
        at = loop.time() + min(max(delay, 0.001), _MAX_RETRY_S)
        if self._retry is not None:
            if self._retry_at <= at:
                return
            self._retry.cancel()
        self._retry_at = at
        self._retry = loop.call_at(at, self.fire)

    def fire(self) -> None:
        """What the timer does (tests call it to stand in for the timer)."""
        self._retry = None
        self._on_due()

    def stop(self) -> None:
        """The session is gone: cancel the timer and forget held reports."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._held is not None:
            self._held.clear()

    def statistics(self) -> dict[str, int]:
        """Gauges of this budget (summed over sessions they count thinning sessions)."""
        return {
            "thinned": self.policy.skipped,
            "held": len(self._held) if self._held is not None else 0,
            "thinning": int(self.policy.thinning),
            "budget_bytes_per_s": int(self.policy.budget.bytes_per_s),
        }
