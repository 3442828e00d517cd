"""The feed service: runs the source feeds, folds their observations into the fusion tracker and
says the confirmed tracks as CoT through ``Ingest.accept``.

Feeds run as tasks of the service's own TaskGroup, itself a task of the node's; feeds added at run
time through the API join the same group. Every feed's observations go to one tracker, so an
object seen by several sources is one track. Tracks leave maps by their stale time: a track the
tracker deletes as stale is simply no longer reported (no ``t-x-d-d``, which would travel at the
most urgent priority, ahead of people's traffic, for every aircraft that flies out of range). A
track that was said and then merged into another (an identity-less track joining an identified
one, or an accepted merge proposal) is deleted on maps at once (``t-x-d-d``): else the object
shows twice until the absorbed track goes stale.

TAK users' own positions are folded into the tracker too (``feeds_contacts``), never said, so that
an APRS tracker moving with a user is proposed to an operator; accepted merges are kept in the
feed store and applied again at start (``feeds_merges``).

A track is said at most once a second (``publish_interval_s``): a source that reports faster
(SBS sends two positions a second per aircraft) costs routing nothing more, and the latest estimate
follows within a tick. Track reports are published at the ``BULK`` priority, the least urgent class: client and link
budgets thin feed tracks before anyone's position. A track goes to the groups every feed that
contributed to it allows (the intersection); when contributing feeds share no group, it is
withheld and counted rather than shown to readers one of the feeds was not meant for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import msgspec
from prometheus_client.core import Metric

from rallypoint.clock import Clock, ms_to_datetime
from rallypoint.config import FeedConfig
from rallypoint.errors import ConfigError, RemoteProtocolError
from rallypoint.model.cot_type import Priority
from rallypoint.model.exercise import RESERVED_IDS, valid_exercise_id
from rallypoint.model.track import Observation, TrackReport, TrackStatus
from rallypoint.routing.envelope import ANON_GROUP, Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.feed_types import FeedInfo, FeedOpener, FeedRunner, LayerItem
from rallypoint.services.feeds_contacts import CLIENT_SOURCE, ContactPositions
from rallypoint.services.feeds_cot import DEFAULT_STALE_S, TrackCot
from rallypoint.services.feeds_kept import KeptFeeds
from rallypoint.services.feeds_layers import DEFAULT_LAYER_STALE_S, LayerBook, item_event, removal_event
from rallypoint.services.feeds_merges import FeedError as FeedError
from rallypoint.services.feeds_merges import MergeDesk
from rallypoint.services.feeds_metrics import feed_families
from rallypoint.services.feeds_model import FeedView as FeedView
from rallypoint.services.feeds_model import Tracker as Tracker
from rallypoint.storage.base.feeds import FeedRecords

log = logging.getLogger(__name__)

DEFAULT_GROUPS = frozenset({ANON_GROUP})
MAX_FEEDS = 256


class _Feed:
    def __init__(self, info: FeedInfo, runner: FeedRunner, origin: str) -> None:
        self.info = info
        self.runner = runner
        self.origin = origin
        self.task: asyncio.Task[None] | None = None
        self.error: str | None = None


class FeedService:
    """Source feeds, the tracker they share and the CoT it produces; a node feature (no routes of its own)."""

    def __init__(self, *, clock: Clock, accept: Callable[[Envelope], object], tracker: Tracker,
                 opener: FeedOpener, origin: Callable[[str, frozenset[str]], Origin] | None = None,
                 tick_s: float = 0.25, publish_interval_s: float = 1.0, store: FeedRecords | None = None,
                 node: str = "", keep_feeds: bool = True) -> None:
        self._clock = clock
        self._accept = accept
        self._tracker = tracker
        self._opener = opener
        self._origin = origin or (lambda name, groups: Origin(session_id=f"feed-{name}", groups=groups))
        self._tick = tick_s
        self._interval_ms = int(publish_interval_s * 1000)
        # When each track was last said, and the latest report of tracks waiting for their interval.
        self._sent_ms: dict[str, int] = {}
        self._pending: dict[str, TrackReport] = {}
        # Track uids said, with the CoT type last said (what a t-x-d-d names when the track merges away).
        self._types: dict[str, str] = {}
        self._contacts = ContactPositions()
        # Merge proposals for operators, and the accepted merges kept in the feed store.
        self.merges = MergeDesk(tracker, store, clock, lambda reports: self.publish(reports, retract=True))
        # Feeds added through the API, kept in the same store under this node's id.
        # (Not with several workers: each would start every kept feed.)
        self.kept = KeptFeeds(store if keep_feeds else None, node, clock, add=self.add, remove=self.remove,
                              view=self.view)
        self._feeds: dict[str, _Feed] = {}
        # Groups of every feed seen, kept after removal: tracks it fed keep their audience until stale.
        self._groups: dict[str, frozenset[str]] = {}
        self._stale: dict[str, float] = {}
        # The exercise of each exercise feed, also kept after removal: its tracks stay marked until stale.
        self._exercises: dict[str, str] = {}
        self._origins: dict[frozenset[str], Origin] = {}
        self._layers = LayerBook()
        self._cot = TrackCot()
        self._tg: asyncio.TaskGroup | None = None
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self.published = 0
        self.withheld = 0
        self.refused = 0
        self.retracted = 0

    # -- node feature ---------------------------------------------------------------------------

    @property
    def routes(self) -> tuple[()]:
        return ()

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """A publication of any node (an ingest hook): a TAK user's position waits for the next tick."""
        if self._feeds:
            self._contacts.offer(envelope, self._clock.now_ms())

    async def run(self) -> None:
        """Run every feed and expire tracks until :meth:`close`."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for feed in self._feeds.values():
                self._start(feed)
            await self.kept.restore()
            self._started.set()
            await self.merges.load()
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=self._tick)
                await self.merges.load()
                self.fold_contacts()
                self.publish(self._tracker.expire(self._now()))
                self.flush()
                self._refresh_layers()
            self._tg = None
            for feed in self._feeds.values():
                self._halt(feed)
        await self.merges.close()

    async def close(self) -> None:
        """Stop every feed (the TaskGroup in :meth:`run` then ends)."""
        self._stop.set()

    async def listening(self) -> None:
        """Return once :meth:`run` has started the feeds and every feed that listens (UDP, TCP server)
        has bound its socket or stopped with an error; the node logs ``rallypoint ready`` after this,
        so a datagram sent right after ready is not lost."""
        await self._started.wait()
        for feed in list(self._feeds.values()):
            bound = getattr(feed.runner, "bound", None)
            task = feed.task
            if not isinstance(bound, asyncio.Event) or bound.is_set() or task is None:
                continue
            waiter = asyncio.create_task(bound.wait(), name=f"feed-bound-{feed.info.name}")
            try:
                await asyncio.wait((waiter, task), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    # -- feeds ----------------------------------------------------------------------------------

    def add(self, config: FeedConfig, *, origin: str = "api") -> FeedView:
        """Validate and start a feed (``ConfigError`` says what is wrong with it; ``FeedError`` on conflicts)."""
        if len(self._feeds) >= MAX_FEEDS:
            raise FeedError("too_many", f"at most {MAX_FEEDS} feeds")
        if config.exercise is not None and (config.exercise in RESERVED_IDS or not valid_exercise_id(config.exercise)):
            raise ConfigError(f"feed exercise {config.exercise[:80]!r}: 1-64 letters, digits, '-' or '_', "
                              "not 'any' or 'none'")
        info, runner = self._opener(config, self.take, self.take_layer)
        if info.name in self._feeds:
            raise FeedError("exists", f"a feed named {info.name!r} exists")
        if config.exercise is not None:
            self._exercises[info.name] = config.exercise
        else:
            self._exercises.pop(info.name, None)
        feed = _Feed(info, runner, origin)
        self._feeds[info.name] = feed
        self._groups[info.name] = frozenset(info.groups) or DEFAULT_GROUPS
        if info.stale_s is not None:
            self._stale[info.name] = info.stale_s
        else:
            self._stale.pop(info.name, None)
        if self._tg is not None:
            self._start(feed)
        log.info("feed added", extra={"feed": info.name, "url": info.url, "origin": origin})
        return self._view(feed)

    def remove(self, name: str) -> FeedView:
        """Stop and forget a feed; its tracks leave maps when they go stale."""
        feed = self._get(name)
        self._halt(feed)
        del self._feeds[name]
        self._remove_items(name, self._layers.forget(name))
        log.info("feed removed", extra={"feed": name})
        return self._view(feed)

    def pause(self, name: str) -> FeedView:
        """Stop taking the feed's input until :meth:`resume`."""
        feed = self._get(name)
        feed.runner.pause()
        log.info("feed paused", extra={"feed": name})
        return self._view(feed)

    def resume(self, name: str) -> FeedView:
        """Take the feed's input again."""
        feed = self._get(name)
        feed.runner.resume()
        log.info("feed resumed", extra={"feed": name})
        return self._view(feed)

    def view(self, name: str) -> FeedView:
        """One feed with its statistics."""
        return self._view(self._get(name))

    def list(self) -> list[FeedView]:
        """Every feed with its statistics, by name."""
        return [self._view(self._feeds[name]) for name in sorted(self._feeds)]

    # -- observations to CoT --------------------------------------------------------------------

    def take(self, name: str, observations: Sequence[Observation]) -> None:
        """A runner's batch: fold it into the tracker and publish the tracks it changed."""
        quality = self._feeds[name].info.quality_m if name in self._feeds else None
        if quality is not None:
            observations = [o if o.ce_m is not None else msgspec.structs.replace(o, ce_m=quality)
                            for o in observations]
        self.publish(self._tracker.update_many(self._now(), observations), retract=True)

    def fold_contacts(self) -> None:
        """Hand the tracker the TAK users' positions that came since the last call (one batch)."""
        users = self._contacts.take()
        if users:
            self.publish(self._tracker.update_many(self._now(), users), retract=True)

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

    def take_layer(self, name: str, items: Sequence[LayerItem]) -> None:
        """A layer feed's whole document: draw its items, remove those that left the layer."""
        self._remove_items(name, self._layers.replace(name, items))
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

    def _refresh_layers(self) -> None:
        for name in self._layers.due(self._clock.now_ms(), self._stale):
            self._send_layer(name)

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

    # -- internals ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return ms_to_datetime(self._clock.now_ms())

    def _get(self, name: str) -> _Feed:
        feed = self._feeds.get(name)
        if feed is None:
            raise FeedError("not_found", f"no feed named {name[:64]!r}")
        return feed

    def _start(self, feed: _Feed) -> None:
        assert self._tg is not None
        feed.task = self._tg.create_task(self._carry(feed), name=f"feed-{feed.info.name}")

    @staticmethod
    def _halt(feed: _Feed) -> None:
        if feed.task is not None:
            feed.task.cancel()
            feed.task = None

    async def _carry(self, feed: _Feed) -> None:
        try:
            await feed.runner.run()
        except OSError as exc:
            # A port that cannot be bound or similar: this feed stops, the others and the node go on.
            feed.error = f"{type(exc).__name__}: {exc}"[:300]
            log.error("feed stopped", extra={"feed": feed.info.name, "error": feed.error})

    def _view(self, feed: _Feed) -> FeedView:
        info = feed.info
        stats = feed.runner.statistics()
        return FeedView(
            name=info.name, url=info.url, format=info.format, transport=info.transport,
            groups=sorted(self._groups.get(info.name, DEFAULT_GROUPS)), stale_s=info.stale_s,
            quality=info.quality_m, origin=feed.origin, paused=stats.paused, error=feed.error, statistics=stats,
            exercise=self._exercises.get(info.name),
        )

    # -- /metrics ---------------------------------------------------------------------------------

    def metric_families(self) -> Iterable[Metric]:
        """Per-feed counters and gauges, and the service's own, for ``/metrics``."""
        outcomes = {"published": self.published, "withheld": self.withheld, "refused": self.refused,
                    "retracted": self.retracted, "merges_accepted": self.merges.accepted}
        return feed_families(self.list(), outcomes, self._tracker.statistics())
