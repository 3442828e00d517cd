"""Inbound de-duplication of federated reports across links and replays (one per node).

A link's sequence marks (``seen``) make its own priority messages exactly-once. Two duplicates they
cannot see:

* The same report arriving by two paths. In a triangle (A, B and C all federated) an event from A
  reaches C directly and through B; B strips A's sequence mark and adds its own, so C cannot match
  them by sequence.
* Positions, which carry no sequence: a link sends the latest report of each uid again after every
  reconnect, and after a restart of the sender (``federation/positions.py``).

A report is identified by :func:`~rallypoint.federation.order.report_id`: uid, type and time and the
rest of what the origin client set (a client may send several reports with the same time, which are
not copies of each other). A key accepted once is a duplicate afterwards. For coalesced traffic
(positions and other bulk reports) a report older than the latest one accepted for its uid is also
dropped, so a replay from a sender that crashed before writing its newest report cannot move a track
back, nor can a report that came the long way round after a newer one. Older means an earlier time,
or the same time and a lower ``tie`` (``federation/order.py``): the place the node where the report
entered federation gave it among the reports of that uid with that time. A uid deleted here (by the
peer, or because its link stayed down past the contact timeout) starts afresh: the next report of
it is accepted even if it is a replay, or a contact that expired during an outage would not come
back when the link heals. Memory is bounded: keys are forgotten once their event is stale, or oldest
first past ``capacity``.
"""

from __future__ import annotations

from collections import OrderedDict

from rallypoint.federation.order import report_id
from rallypoint.model.cot import CotEvent


class RecentReports:
    """Keys of recently accepted federated reports and the latest coalesced report per uid."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        # (uid, report id, epoch of uid) -> stale, in the order accepted.
        self._keys: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        # uid -> how many times it was forgotten: older keys of the uid no longer match.
        self._epochs: OrderedDict[str, int] = OrderedDict()
        # uid -> (time, tie, stale) of the latest coalesced report accepted.
        self._latest: OrderedDict[str, tuple[int, int, int]] = OrderedDict()
        self.duplicates = 0

    def duplicate(self, event: CotEvent, *, coalesced: bool, tie: int = 0) -> bool:
        """True (and counted) if ``event`` was already accepted, or is an older coalesced report.

        ``tie``: the report's place among its uid's reports with the same time (its ``_rptie_``).
        """
        seen = self._key(event) in self._keys
        if not seen and coalesced:
            latest = self._latest.get(event.uid)
            seen = latest is not None and (event.time, tie) < latest[:2]
        if seen:
            self.duplicates += 1
        return seen

    def remember(self, event: CotEvent, *, coalesced: bool, now_ms: int, tie: int = 0) -> None:
        """``event`` was accepted: later copies of it are duplicates."""
        self._keys[self._key(event)] = event.stale
        if coalesced:
            self._latest[event.uid] = (event.time, tie, event.stale)
            self._latest.move_to_end(event.uid)
        self._prune(now_ms)

    def forget(self, uid: str) -> None:
        """``uid`` was deleted: a later report of it starts afresh."""
        self._latest.pop(uid, None)
        self._epochs[uid] = self._epochs.pop(uid, 0) + 1
        if len(self._epochs) > self._capacity:
            self._epochs.popitem(last=False)

    def __len__(self) -> int:
        return len(self._keys) + len(self._latest)

    def _key(self, event: CotEvent) -> tuple[str, int, int]:
        return (event.uid, report_id(event), self._epochs.get(event.uid, 0))

    def _prune(self, now_ms: int) -> None:
        # Insertion order approximates stale order; what is left behind goes with the capacity bound.
        keys, latest = self._keys, self._latest
        while keys and (len(keys) > self._capacity or next(iter(keys.values())) <= now_ms):
            keys.popitem(last=False)
        while latest and (len(latest) > self._capacity or next(iter(latest.values()))[2] <= now_ms):
            latest.popitem(last=False)
