"""Which federated report is which, and which of two reports with the same time came last.

A client may send several reports of one uid with the same ``time``: timestamps have millisecond
(some producers whole-second) resolution, and a client moving fast or replaying a burst fills one
millisecond with several positions. So a report is not identified by uid, type and time alone:
:func:`report_id` adds what the origin client set and no server on the way changes (start, stale,
how, the point and the parsed detail fields a position is made of). Flow tags and sequence marks,
which each server adds, are left out, so the copies of one report that arrive by two paths match.

Two *different* reports with the same time cannot be ordered by time. The node where a coalesced
report enters federation (it carries no flow tag yet) numbers the distinct reports of a uid that
share a time, in the order they reached it: :class:`SameTimeOrder`, one per node, shared by every
link so each peer gets the same number for the same report. The number travels in the detail as
``<_rptie_ n="N"/>`` (absent for 0, the first report of its time), which servers forwarding the
report keep, so every receiver orders reports by ``(time, tie)`` whatever path they came by.
"""

from __future__ import annotations

from collections import OrderedDict

from rallypoint.model.cot import CotEvent


def report_id(event: CotEvent) -> int:
    """A 64-bit identity of the report as its origin client made it, within this process.

    Equal for every copy of one report (any path, any replay); different for two reports of one uid
    and time that differ in position, validity or the parsed detail (callsign, speed, course, battery).
    """
    p, d = event.point, event.detail
    return hash((event.uid, event.type, event.time, event.start, event.stale, event.how,
                 p.lat, p.lon, p.hae, p.ce, p.le, d.callsign, d.speed, d.course, d.battery, d.link_uid))


class SameTimeOrder:
    """Per uid: the time of its newest report entering federation here, and the reports seen with it."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        # uid -> (time, report id -> tie index), for the newest time of the uid only.
        self._by_uid: OrderedDict[str, tuple[int, dict[int, int]]] = OrderedDict()

    def tie(self, event: CotEvent) -> int:
        """The place of ``event`` among the distinct reports of its uid with the same time (0 = first).

        The same report asked again (offered to another link, or after the link's queue loaded) gets
        the same number. A report older than the uid's newest time gets 0: its time orders it.
        """
        rid = report_id(event)
        entry = self._by_uid.get(event.uid)
        if entry is None or event.time > entry[0]:
            self._by_uid[event.uid] = (event.time, {rid: 0})
            self._by_uid.move_to_end(event.uid)
            if len(self._by_uid) > self._capacity:
                self._by_uid.popitem(last=False)
            return 0
        time, seen = entry
        if event.time < time:
            return 0
        return seen.setdefault(rid, len(seen))

    def __len__(self) -> int:
        return len(self._by_uid)
