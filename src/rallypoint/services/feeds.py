"""The feed service: runs the source feeds, folds their observations into the fusion tracker and
says the confirmed tracks as CoT through ``Ingest.accept``.

Feeds run as tasks of the service's own TaskGroup, itself a task of the node's; feeds added at run
time through the API join the same group. Every feed's observations go to one tracker, so an
object seen by several sources is one track. What the tracker reports is said by ``feeds_publish``
(when a track is said, to whom, and when it is deleted on maps).

TAK users' own positions are folded into the tracker too (``feeds_contacts``), never said, so that
an APRS tracker moving with a user is proposed to an operator; accepted merges are kept in the
feed store and applied again at start (``feeds_merges``).
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
from rallypoint.errors import ConfigError
from rallypoint.model.exercise import RESERVED_IDS, valid_exercise_id
from rallypoint.model.track import Observation, TrackReport
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.feed_types import FeedInfo, FeedOpener, FeedRunner, LayerItem
from rallypoint.services.feeds_contacts import ContactPositions
from rallypoint.services.feeds_kept import KeptFeeds
from rallypoint.services.feeds_merges import FeedError as FeedError
from rallypoint.services.feeds_merges import MergeDesk
from rallypoint.services.feeds_metrics import feed_families
from rallypoint.services.feeds_model import FeedView as FeedView
from rallypoint.services.feeds_model import Tracker as Tracker
from rallypoint.services.feeds_publish import FeedPublisher
from rallypoint.storage.base.feeds import FeedRecords

log = logging.getLogger(__name__)

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
        self._tracker = tracker
        self._opener = opener
        self._tick = tick_s
        self._contacts = ContactPositions()
        self._out = FeedPublisher(
            clock=clock, accept=accept, contacts=self._contacts, publish_interval_s=publish_interval_s,
            origin=origin or (lambda name, groups: Origin(session_id=f"feed-{name}", groups=groups)),
        )
        # Merge proposals for operators, and the accepted merges kept in the feed store.
        self.merges = MergeDesk(tracker, store, clock, lambda reports: self.publish(reports, retract=True))
        # Feeds added through the API, kept in the same store under this node's id.
        # (Not with several workers: each would start every kept feed.)
        self.kept = KeptFeeds(store if keep_feeds else None, node, clock, add=self.add, remove=self.remove,
                              view=self.view)
        self._feeds: dict[str, _Feed] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._stop = asyncio.Event()
        self._started = asyncio.Event()

    # -- node feature ---------------------------------------------------------------------------

    @property
    def routes(self) -> tuple[()]:
        return ()

    @property
    def published(self) -> int:
        """Track reports and layer items said."""
        return self._out.published

    @property
    def withheld(self) -> int:
        """Track reports not said because the feeds of the track share no group."""
        return self._out.withheld

    @property
    def refused(self) -> int:
        """Track reports and layer items that ingest refused."""
        return self._out.refused

    @property
    def retracted(self) -> int:
        """Tracks deleted on maps because they merged into another."""
        return self._out.retracted

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
        # Kept after the feed is removed: the tracks it fed keep their audience and marking until stale.
        self._out.configure(info.name, frozenset(info.groups), info.stale_s, config.exercise)
        feed = _Feed(info, runner, origin)
        self._feeds[info.name] = feed
        if self._tg is not None:
            self._start(feed)
        log.info("feed added", extra={"feed": info.name, "url": info.url, "origin": origin})
        return self._view(feed)

    def remove(self, name: str) -> FeedView:
        """Stop and forget a feed; its tracks leave maps when they go stale."""
        feed = self._get(name)
        self._halt(feed)
        del self._feeds[name]
        self._out.forget_layer(name)
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
        """Say confirmed reports as CoT (see :meth:`FeedPublisher.publish`)."""
        self._out.publish(reports, retract=retract)

    def flush(self) -> None:
        """Say the waiting reports whose track's interval has passed."""
        self._out.flush()

    def take_layer(self, name: str, items: Sequence[LayerItem]) -> None:
        """A layer feed's whole document: draw its items, remove those that left the layer."""
        self._out.take_layer(name, items)

    def _refresh_layers(self) -> None:
        self._out.refresh_layers()

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
            groups=sorted(self._out.groups_of(info.name)), stale_s=info.stale_s,
            quality=info.quality_m, origin=feed.origin, paused=stats.paused, error=feed.error, statistics=stats,
            exercise=self._out.exercise_of(info.name),
        )

    # -- /metrics ---------------------------------------------------------------------------------

    def metric_families(self) -> Iterable[Metric]:
        """Per-feed counters and gauges, and the service's own, for ``/metrics``."""
        outcomes = {"published": self.published, "withheld": self.withheld, "refused": self.refused,
                    "retracted": self.retracted, "merges_accepted": self.merges.accepted}
        return feed_families(self.list(), outcomes, self._tracker.statistics())
