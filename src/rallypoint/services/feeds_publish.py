"""What the feed service says: track reports and layer items as CoT through ``Ingest.accept``.

Tracks leave maps by their stale time: a track the tracker deletes as stale is simply no longer
reported (no ``t-x-d-d``, which would travel at the most urgent priority, ahead of people's traffic,
for every aircraft that flies out of range). A track that was said and then merged into another (an
identity-less track joining an identified one, or an accepted merge proposal) is deleted on maps at
once (``t-x-d-d``): else the object shows twice until the absorbed track goes stale.

A track is said at most once a second (``publish_interval_s``): a source that reports faster
(SBS sends two positions a second per aircraft) costs routing nothing more, and the latest estimate
follows within a tick. Track reports are published at the ``BULK`` priority, the least urgent
class: client and link budgets thin feed tracks before anyone's position. A track goes to the
groups every feed that contributed to it allows (the intersection); when contributing feeds share
no group, it is withheld and counted rather than shown to readers one of the feeds was not meant for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from rallypoint.clock import Clock
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot_type import Priority
from rallypoint.model.track import TrackReport, TrackStatus
from rallypoint.routing.envelope import ANON_GROUP, Envelope, Origin
from rallypoint.services.feed_types import LayerItem
from rallypoint.services.feeds_contacts import CLIENT_SOURCE, ContactPositions
from rallypoint.services.feeds_cot import DEFAULT_STALE_S, TrackCot
from rallypoint.services.feeds_layers import DEFAULT_LAYER_STALE_S, LayerBook, item_event, removal_event

# The service's logger: feed log lines keep the name they are filtered by.
log = logging.getLogger("rallypoint.services.feeds")

DEFAULT_GROUPS = frozenset({ANON_GROUP})


class FeedPublisher:
    """Says tracks and layers as CoT to the groups, stale time and exercise of the feeds they came from.

    A feed's settings (``configure``) are kept after the feed is removed: the tracks it fed keep
    their audience and exercise marking until they go stale.
    """

    def __init__(self, *, clock: Clock, accept: Callable[[Envelope], object],
                 origin: Callable[[str, frozenset[str]], Origin], contacts: ContactPositions,
                 publish_interval_s: float = 1.0) -> None:
        self._clock = clock
        self._accept = accept
        self._origin = origin
        self._contacts = contacts
        self._interval_ms = int(publish_interval_s * 1000)
        # When each track was last said, and the latest report of tracks waiting for their interval.
        self._sent_ms: dict[str, int] = {}
        self._pending: dict[str, TrackReport] = {}
        # Track uids said, with the CoT type last said (what a t-x-d-d names when the track merges away).
        self._types: dict[str, str] = {}
        self._groups: dict[str, frozenset[str]] = {}
        self._stale: dict[str, float] = {}
        self._exercises: dict[str, str] = {}
        self._origins: dict[frozenset[str], Origin] = {}
        self._layers = LayerBook()
        self._cot = TrackCot()
        self.published = 0
        self.withheld = 0
        self.refused = 0
        self.retracted = 0

    # -- feeds' settings --------------------------------------------------------------------------

    def configure(self, name: str, groups: frozenset[str], stale_s: float | None, exercise: str | None) -> None:
        """What the tracks and layer items of feed ``name`` are said with from now on."""
        if exercise is not None:
            self._exercises[name] = exercise
        else:
            self._exercises.pop(name, None)
        self._groups[name] = groups or DEFAULT_GROUPS
        if stale_s is not None:
            self._stale[name] = stale_s
        else:
            self._stale.pop(name, None)

    def groups_of(self, name: str) -> frozenset[str]:
        """The groups feed ``name`` is said to."""
        return self._groups.get(name, DEFAULT_GROUPS)

    def exercise_of(self, name: str) -> str | None:
        """The exercise whose traffic feed ``name`` is, if any."""
        return self._exercises.get(name)

    # -- tracks -----------------------------------------------------------------------------------

    def publish(self, reports: Iterable[TrackReport], *, retract: bool = False) -> None:
        """Say confirmed reports as CoT through ingest, to the groups their sources share.

        A track is said at most once per ``publish_interval_s``: a report that comes sooner waits
        (the latest one per track) and is said by :meth:`flush` once the interval has passed.
        With ``retract`` (reports of a merge), a DELETED report of a track that was said deletes it
        on maps; otherwise (staleness) the track just stops being said.
        """
        now_ms = self._clock.now_ms()
        contacts = self._contacts
        for report in reports:
            if report.status is TrackStatus.DELETED:
                self._sent_ms.pop(report.uid, None)
                self._pending.pop(report.uid, None)
                said = self._types.pop(report.uid, None)
                if retract and said is not None:
                    self._retract(report, said, now_ms)
                continue
            if report.status is not TrackStatus.CONFIRMED:
                continue
            if contacts.is_user(report.uid) and CLIENT_SOURCE in report.sources:
                # The user's own client shows the user; a tracker merged in while the client was
                # silent was said as the user's track, which leaves maps now the client is back.
                said = self._types.pop(report.uid, None)
                self._sent_ms.pop(report.uid, None)
                self._pending.pop(report.uid, None)
                if said is not None:
                    self._retract(report, said, now_ms)
                continue
            last = self._sent_ms.get(report.uid)
            if last is not None and now_ms - last < self._interval_ms:
                self._pending[report.uid] = report
                continue
            self._pending.pop(report.uid, None)
            self._say(report, now_ms)

    def flush(self) -> None:
        """Say the waiting reports whose track's interval has passed."""
        now_ms = self._clock.now_ms()
        due = [r for uid, r in self._pending.items() if now_ms - self._sent_ms.get(uid, 0) >= self._interval_ms]
        for report in due:
            del self._pending[report.uid]
            self._say(report, now_ms)

    def _say(self, report: TrackReport, now_ms: int) -> None:
        self._sent_ms[report.uid] = now_ms
        groups = self._audience(report.sources)
        if not groups:
            self.withheld += 1
            return
        stale_s = max((self._stale[s] for s in report.sources if s in self._stale),
                      default=DEFAULT_STALE_S[report.domain])
        try:
            # Any exercise feed among its sources makes a track exercise traffic: never taken for real.
            exercise = min((self._exercises[s] for s in report.sources if s in self._exercises), default=None)
            event = self._cot.event(report, stale_s=stale_s, now_ms=now_ms, exercise=exercise)
            self._accept(Envelope(event, self._origin_for(groups), now_ms, priority=Priority.BULK))
        except RemoteProtocolError as exc:
            # A uid another sender holds, or a name the CoT checks refuse: this report only.
            self.refused += 1
            log.warning("feed track refused", extra={"uid": report.uid, "reason": exc.reason})
            return
        self._types[report.uid] = event.type
        self.published += 1

    def _retract(self, report: TrackReport, said_type: str, now_ms: int) -> None:
        """Delete a track that merged into another on the maps it was said to."""
        groups = self._audience(report.sources) or DEFAULT_GROUPS
        try:
            self._accept(Envelope(removal_event(report.uid, said_type, now_ms=now_ms), self._origin_for(groups),
                                  now_ms))
        except RemoteProtocolError as exc:
            log.warning("feed track removal refused", extra={"uid": report.uid, "reason": exc.reason})
            return
        self.retracted += 1

    # -- layers -----------------------------------------------------------------------------------

    def take_layer(self, name: str, items: Sequence[LayerItem]) -> None:
        """A layer feed's whole document: draw its items, remove those that left the layer."""
        self._remove_items(name, self._layers.replace(name, items))
        self._send_layer(name)

    def forget_layer(self, name: str) -> None:
        """Remove a removed feed's layer items from maps."""
        self._remove_items(name, self._layers.forget(name))

    def refresh_layers(self) -> None:
        """Send again the layers whose items are due (every half stale time)."""
        for name in self._layers.due(self._clock.now_ms(), self._stale):
            self._send_layer(name)

    def _send_layer(self, name: str) -> None:
        now_ms = self._clock.now_ms()
        origin = self._origin_for(self._groups.get(name, DEFAULT_GROUPS))
        stale_s = self._stale.get(name, DEFAULT_LAYER_STALE_S)
        for item in self._layers.items(name):
            try:
                event = item_event(name, item, now_ms=now_ms, stale_s=stale_s)
                self._accept(Envelope(event, origin, now_ms, priority=Priority.BULK))
            except RemoteProtocolError as exc:
                self.refused += 1
                log.warning("feed layer item refused", extra={"feed": name, "item": item.id[:64],
                                                              "reason": exc.reason})
                continue
            self.published += 1
        self._layers.sent(name, now_ms)

    def _remove_items(self, name: str, gone: Sequence[tuple[str, str]]) -> None:
        now_ms = self._clock.now_ms()
        origin = self._origin_for(self._groups.get(name, DEFAULT_GROUPS))
        for uid, item_type in gone:
            try:
                self._accept(Envelope(removal_event(uid, item_type, now_ms=now_ms), origin, now_ms))
            except RemoteProtocolError as exc:
                log.warning("feed layer removal refused", extra={"uid": uid[:128], "reason": exc.reason})

    # -- audience -----------------------------------------------------------------------------------

    def _audience(self, sources: Sequence[str]) -> frozenset[str]:
        groups: frozenset[str] | None = None
        for source in sources:
            allowed = self._groups.get(source, DEFAULT_GROUPS)
            groups = allowed if groups is None else groups & allowed
        return DEFAULT_GROUPS if groups is None else groups

    def _origin_for(self, groups: frozenset[str]) -> Origin:
        origin = self._origins.get(groups)
        if origin is None:
            origin = self._origins[groups] = self._origin("feeds", groups)
        return origin
