"""Reports of a uid whose cluster claim is undecided wait here, so a loser's report reaches nobody.

In a cluster a node that binds a uid nobody holds claims it in NATS (``services/uid_claims.py``);
until NATS answers, this node cannot know whether its client or another node's keeps the uid. The
reports of that uid accepted here meanwhile are kept in this hold instead of being routed, pictured
or published, and then:

* **won**: released, in the order they came, into the picture and to their receivers;
* **lost**: dropped (the caller counts and logs each as a ``spoofed_uid`` refusal);
* **undecided** after ``hold_s`` (NATS away or slow): released as if won. The node then decides the
  uid alone, as it did before claims were shared; the claim is still sent when NATS answers, and a
  loss found then closes the session as usual. Serving goes on through a NATS outage, and nothing
  is kept longer than ``hold_s``.

What is kept is bounded: at most ``max_per_uid`` reports of one uid (the oldest is dropped first:
positions supersede each other) and at most ``max_uids`` uids (past it, the oldest hold is
released at once, as if its time were up). Reports of a session that ended before the decision
are never released: that session's disconnect notice was never sent (nothing of it was pictured),
so they would stay in the picture as a unit that is gone.

Sans-IO: time is passed in (monotonic seconds); the caller runs the timer and does the releasing.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator

import msgspec

from rallypoint.routing.envelope import Envelope
from rallypoint.security.policy import Claim

log = logging.getLogger(__name__)

HOLD_S = 2.0
MAX_PER_UID = 16
MAX_UIDS = 1_000

Report = tuple[Envelope, Claim]


class _Hold:
    __slots__ = ("deadline", "principal", "reports", "session", "warned")

    def __init__(self, principal: str, deadline: float) -> None:
        self.principal = principal
        self.deadline = deadline
        self.session: str | None = None  # the claiming session: the first report's
        self.reports: deque[Report] = deque()
        self.warned = False


class ClaimHoldStatistics(msgspec.Struct, frozen=True):
    """Counters of a :class:`ClaimHold` (reports, except ``expired``: holds)."""

    held: int  # reports kept while their uid's claim was undecided
    released: int  # released into the picture (claim won, or undecided in time)
    lost: int  # dropped: another principal's claim won
    overflowed: int  # dropped: more than max_per_uid waited for one uid
    abandoned: int  # dropped: their session ended before the decision
    expired: int  # holds released undecided (time up, or too many uids held)
    holding: int  # uids held now


class ClaimHold:
    """The reports of uids whose cluster claim is undecided; ``holds`` answers ``uid in holds`` cheaply."""

    def __init__(self, *, hold_s: float = HOLD_S, max_per_uid: int = MAX_PER_UID, max_uids: int = MAX_UIDS) -> None:
        self.hold_s = hold_s
        self._max_per_uid = max(1, max_per_uid)
        self._max_uids = max(1, max_uids)
        # Insertion order is deadline order: every hold gets the same hold_s (``_due`` aside).
        self.holds: dict[str, _Hold] = {}
        self._due: dict[str, None] = {}  # holds released before their time (too many uids held)
        self.held = self.released = self.lost = self.overflowed = self.abandoned = self.expired = 0

    def begin(self, uid: str, principal: str, now: float) -> None:
        """``principal``'s claim of ``uid`` is on its way to NATS: hold that uid's reports from now."""
        if uid in self.holds:
            return
        self.holds[uid] = _Hold(principal, now + self.hold_s)
        if len(self.holds) - len(self._due) > self._max_uids:
            oldest = next(uid for uid in self.holds if uid not in self._due)
            self._due[oldest] = None
            log.warning(
                "uid claim hold released early: too many uids held",
                extra={
                    "uid": oldest,
                    "limit": self._max_uids,
                },
            )

    def give_up(self, uid: str) -> None:
        """The claim of ``uid`` will not be decided (it was not sent): release its reports at once."""
        if uid in self.holds:
            self._due[uid] = None

    def keep(self, envelope: Envelope, claim: Claim) -> None:
        """Keep a report of a held uid (``envelope.event.uid in holds``) until its claim is decided."""
        uid = envelope.event.uid
        hold = self.holds[uid]
        if hold.session is None:
            hold.session = envelope.origin.session_id
        if len(hold.reports) >= self._max_per_uid:
            hold.reports.popleft()
            self.overflowed += 1
            if not hold.warned:
                hold.warned = True
                log.warning(
                    "uid claim hold full: oldest report dropped",
                    extra={
                        "uid": uid,
                        "limit": self._max_per_uid,
                    },
                )
        hold.reports.append((envelope, claim))
        self.held += 1

    def principal_of(self, uid: str) -> str | None:
        """The principal whose claim of ``uid`` is held, or None."""
        hold = self.holds.get(uid)
        return None if hold is None else hold.principal

    def won(self, uid: str, live: Callable[[str], bool]) -> list[Report]:
        """The claim is won: stop holding ``uid``; its reports to release, in order.

        ``live(session_id)``: whether that session is still open. A report of the claiming session once it has ended is
        dropped (counted as abandoned) rather than released.
        """
        hold = self.holds.pop(uid, None)
        self._due.pop(uid, None)
        if hold is None:
            return []
        return self._releasable(hold, live)

    def lose(self, uid: str) -> list[Report]:
        """The claim is lost: stop holding ``uid``; its reports, which the caller drops as refused."""
        hold = self.holds.pop(uid, None)
        self._due.pop(uid, None)
        if hold is None:
            return []
        self.lost += len(hold.reports)
        return list(hold.reports)

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has something to release (monotonic seconds), or None."""
        if self._due:
            return float("-inf")
        for hold in self.holds.values():
            return hold.deadline
        return None

    def expire(self, now: float, live: Callable[[str], bool]) -> Iterator[tuple[str, list[Report]]]:
        """Release every hold whose time is up (or that was released early): ``(uid, reports)`` each."""
        for uid in list(self._due):
            hold = self.holds.pop(uid)
            del self._due[uid]
            self.expired += 1
            yield uid, self._releasable(hold, live)
        while self.holds:
            uid, hold = next(iter(self.holds.items()))
            if hold.deadline > now:
                return
            del self.holds[uid]
            self.expired += 1
            yield uid, self._releasable(hold, live)

    def statistics(self) -> ClaimHoldStatistics:
        """Counters of this hold."""
        return ClaimHoldStatistics(
            held=self.held,
            released=self.released,
            lost=self.lost,
            overflowed=self.overflowed,
            abandoned=self.abandoned,
            expired=self.expired,
            holding=len(self.holds),
        )

    def _releasable(self, hold: _Hold, live: Callable[[str], bool]) -> list[Report]:
        if hold.session is not None and not live(hold.session):
            gone = [r for r in hold.reports if r[0].origin.session_id == hold.session]
            self.abandoned += len(gone)
            reports = [r for r in hold.reports if r[0].origin.session_id != hold.session]
        else:
            reports = list(hold.reports)
        self.released += len(reports)
        return reports
