"""Link budgets for degraded links: a byte token bucket and a thinning policy on top of it.

Over a narrow link (radio, satellite) the question is not only *whether* to send but *what to
give up first*. The answer here: positions are thinned (a per-uid minimum interval that grows
while the link is over budget) before anything more urgent waits, and urgent envelopes
(emergencies, deletes, chat, tasks) are never thinned, only deferred until the budget allows.

Guarantee: over any run, the bytes of envelopes given ``Decision.SEND`` never exceed
``burst_bytes + bytes_per_s * elapsed`` (pinned by a property test). Time is passed in
(monotonic seconds); nothing here reads a clock.
"""

from __future__ import annotations

import enum
import math

from rallypoint.model.cot_type import COALESCED_CLASSES, Priority
from rallypoint.routing.envelope import Envelope


class LinkBudget:
    """Token bucket in bytes: ``burst_bytes`` capacity, refilled at ``bytes_per_s``."""

    def __init__(self, bytes_per_s: float, burst_bytes: int, now: float) -> None:
        if bytes_per_s <= 0 or burst_bytes <= 0:
            raise ValueError("link budget rate and burst must be positive")
        self.bytes_per_s = float(bytes_per_s)
        self.burst_bytes = burst_bytes
        self._tokens = float(burst_bytes)
        self._at = now

    def available(self, now: float) -> float:
        """Bytes that may be sent right now."""
        if now > self._at:
            self._tokens = min(float(self.burst_bytes), self._tokens + (now - self._at) * self.bytes_per_s)
            self._at = now
        return self._tokens

    def try_spend(self, nbytes: int, now: float, *, keep: float = 0.0) -> bool:
        """Take ``nbytes`` if that leaves at least ``keep`` bytes in the bucket."""
        if self.available(now) - nbytes < keep:
            return False
        self._tokens -= nbytes
        return True

    def refund(self, nbytes: int) -> None:
        """Give back bytes taken but not sent (a compressed write came out below its bound)."""
        if nbytes > 0:
            self._tokens = min(float(self.burst_bytes), self._tokens + nbytes)

    def wait_s(self, nbytes: int, now: float, *, keep: float = 0.0) -> float:
        """Seconds until ``try_spend(nbytes, keep=keep)`` can succeed (inf if it never can)."""
        need = nbytes + keep - self.available(now)
        if need <= 0:
            return 0.0
        if nbytes + keep > self.burst_bytes:
            return math.inf
        return need / self.bytes_per_s


class Decision(enum.Enum):
    """What to do with one envelope now."""

    SEND = "send"  # write it; its bytes were taken from the budget
    DEFER = "defer"  # keep it (in the outbox) and ask again later
    SKIP = "skip"  # a thinned position: drop it, a newer report of the uid supersedes it


class ThinningPolicy:
    """Decides per envelope under a :class:`LinkBudget`.

    * Urgent classes (EMERGENCY, MESSAGE) may use the whole bucket; they are SENT or DEFERRED,
      never skipped.
    * Position-like classes (POSITION, OTHER_POSITION, BULK) may only spend while
      ``reserve_bytes`` stay in the bucket for urgent traffic, and each uid is sent at most once
      per *interval*. The interval is 0 while the link keeps up; each ``step_s`` spent under
      pressure (a position could not be sent) doubles it (from ``min_interval_s`` up to
      ``max_interval_s``), each ``step_s`` without pressure halves it (back to 0). Other
      groups' positions use twice the interval, bulk four times.
    """

    _FACTOR = {Priority.POSITION: 1.0, Priority.OTHER_POSITION: 2.0, Priority.BULK: 4.0}

    def __init__(
        self,
        budget: LinkBudget,
        *,
        reserve_bytes: int | None = None,
        min_interval_s: float = 1.0,
        max_interval_s: float = 60.0,
        step_s: float = 1.0,
    ) -> None:
        self.budget = budget
        self.reserve_bytes = budget.burst_bytes // 4 if reserve_bytes is None else reserve_bytes
        if not 0 <= self.reserve_bytes < budget.burst_bytes:
            raise ValueError("reserve_bytes must be within [0, burst_bytes)")
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.step_s = step_s
        self.interval_s = 0.0
        self._pressure = False
        self._step_at: float | None = None
        self._last_sent: dict[str, float] = {}
        self.sent_bytes = 0
        self.skipped = 0
        self.deferred = 0

    def decide(self, envelope: Envelope, size: int, now: float, *, priority: Priority | None = None) -> Decision:
        """SEND (bytes taken), DEFER or SKIP for ``envelope`` of ``size`` wire bytes at ``now``.

        ``priority`` is the receiver's delivery class when it differs from the envelope's own
        (a position of another group). ``size`` must not exceed the bucket's burst.
        """
        if size > self.budget.burst_bytes:
            raise ValueError(f"an envelope of {size} bytes can never fit a burst of {self.budget.burst_bytes}")
        prio = envelope.priority if priority is None else priority
        self._adjust(now)
        if prio not in COALESCED_CLASSES:
            if self.budget.try_spend(size, now):
                self.sent_bytes += size
                return Decision.SEND
            self.deferred += 1
            return Decision.DEFER
        uid = envelope.event.uid
        last = self._last_sent.get(uid)
        if last is not None and self.interval_s > 0 and now - last < self.interval_s * self._FACTOR[prio]:
            self.skipped += 1
            return Decision.SKIP
        if self.budget.try_spend(size, now, keep=self.reserve_bytes):
            self.sent_bytes += size
            self._last_sent[uid] = now
            return Decision.SEND
        self._pressure = True
        self.deferred += 1
        return Decision.DEFER

    def spend_urgent(self, size: int, now: float) -> bool:
        """Take ``size`` bytes for a control frame (pong, protocol reply): the whole bucket, like urgent traffic."""
        self._adjust(now)
        if self.budget.try_spend(size, now):
            self.sent_bytes += size
            return True
        self.deferred += 1
        return False

    def due_in(self, uid: str, now: float, *, priority: Priority = Priority.POSITION) -> float:
        """Seconds until thinning lets ``uid`` (of class ``priority``) be sent again; 0 when it may now."""
        last = self._last_sent.get(uid)
        if last is None or self.interval_s <= 0:
            return 0.0
        return max(0.0, last + self.interval_s * self._FACTOR.get(priority, 1.0) - now)

    @property
    def thinning(self) -> bool:
        """Whether positions are being thinned now (the per-uid interval is above 0)."""
        return self.interval_s > 0

    def refund(self, nbytes: int) -> None:
        """Return ``nbytes`` of earlier SENDs that were not written (compression made them smaller).

        Safe for the guarantee as long as each SEND was charged at least what was finally written.
        """
        if nbytes > 0:
            self.budget.refund(nbytes)
            self.sent_bytes -= nbytes

    def retry_in(self, envelope: Envelope, size: int, now: float, *, priority: Priority | None = None) -> float:
        """Seconds until a deferred envelope could be sent (ignoring thinning)."""
        prio = envelope.priority if priority is None else priority
        keep = self.reserve_bytes if prio in COALESCED_CLASSES else 0.0
        return self.budget.wait_s(size, now, keep=keep)

    def _adjust(self, now: float) -> None:
        if self._step_at is None:
            self._step_at = now
            return
        if now - self._step_at < self.step_s:
            return
        self._step_at = now
        if self._pressure:
            self.interval_s = min(self.max_interval_s, max(self.min_interval_s, self.interval_s * 2))
        elif self.interval_s > 0:
            self.interval_s = self.interval_s / 2 if self.interval_s / 2 >= self.min_interval_s else 0.0
        self._pressure = False
        if self.interval_s == 0.0 and self._last_sent:
            # Nothing is being thinned: the per-uid history is not needed (bounded memory).
            self._last_sent.clear()
        elif len(self._last_sent) > 4096:
            horizon = now - self.max_interval_s * max(self._FACTOR.values())
            self._last_sent = {u: t for u, t in self._last_sent.items() if t >= horizon}


class HeldReports:
    """The latest thinned report of each uid, offered again once thinning lets that uid go.

    A skipped position is superseded by the uid's next report; when the uid stops reporting, the
    held one is the only way its last position ever arrives. One entry per uid (a newer report
    replaces it), at most ``max_items`` (the oldest held is dropped first, counted).
    """

    def __init__(self, max_items: int = 10_000) -> None:
        if max_items < 1:
            raise ValueError("max_items must be positive")
        self.max_items = max_items
        self._held: dict[str, tuple[Envelope, Priority]] = {}
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._held)

    def uids(self) -> list[str]:
        """Uids with a held report, oldest first."""
        return list(self._held)

    def hold(self, envelope: Envelope, priority: Priority) -> None:
        """Keep ``envelope`` (just thinned) as its uid's latest report."""
        uid = envelope.event.uid
        self._held.pop(uid, None)
        if len(self._held) >= self.max_items:
            del self._held[next(iter(self._held))]
            self.dropped += 1
        self._held[uid] = (envelope, priority)

    def discard(self, uid: str) -> None:
        """Forget ``uid``'s held report (a newer report or a delete of it came)."""
        self._held.pop(uid, None)

    def clear(self) -> None:
        """Forget everything held."""
        self._held.clear()

    def due_in(self, policy: ThinningPolicy, now: float) -> float | None:
        """Seconds until the first held report may go (None when nothing is held)."""
        if not self._held:
            return None
        return min(policy.due_in(uid, now, priority=prio) for uid, (_, prio) in self._held.items())

    def release(self, policy: ThinningPolicy, now: float) -> list[Envelope]:
        """Take out the held reports thinning now lets go, oldest held first."""
        due = [uid for uid, (_, prio) in self._held.items() if policy.due_in(uid, now, priority=prio) <= 0]
        return [self._held.pop(uid)[0] for uid in due]
