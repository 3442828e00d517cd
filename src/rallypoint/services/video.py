"""The video registry: connections added over the Marti video API, the native API or a ``b-i-v`` CoT.

Rules: a connection is seen by readers of the groups it was added in (the adder's write groups, or
the CoT sender's groups); it is changed or removed only by its owner or a writer of one of its groups.
URLs are shown whole only to the owner (``model.video.view_for``); a non-owner who sends back a
redacted URL unchanged keeps the stored one, so editing an alias never loses the credentials.

``b-i-v`` events reach :meth:`VideoService.observe` on every node (it is an ingest hook, run for
publications of any node); the parse happens there, the write in :meth:`run`, through a bounded
queue (overflow: drop the newest and count it). Writing the same event on every node is harmless:
the document is keyed by uid and stamped with the event's time, so a shared store gets the same row.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from typing import Protocol

import msgspec

from rallypoint.clock import Clock
from rallypoint.model.video import (
    MAX_FEEDS_PER_CONNECTION,
    BadVideo,
    VideoConnection,
    VideoFeed,
    check_alias,
    check_uid,
    redact_url,
    view_for,
)
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.services.video_xml import VIDEO_COT_TYPE, feed_from_cot
from rallypoint.storage.base.video import VideoRecords

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_QUEUE = 256


class VideoCaller(Protocol):
    """Who asks (``web.context.RequestIdentity`` fits)."""

    @property
    def principal(self) -> str | None: ...

    @property
    def write_groups(self) -> frozenset[str]: ...

    @property
    def read_groups(self) -> frozenset[str]: ...


class VideoDenied(Exception):
    """The caller may see the connection but not change it, or its uid belongs to other groups."""


class VideoFull(Exception):
    """The registry holds its maximum number of connections."""


class _Sighting(msgspec.Struct, frozen=True):
    feed: VideoFeed
    groups: frozenset[str]
    owner: str | None
    time_ms: int


def _owns(connection: VideoConnection, principal: str | None) -> bool:
    return principal is not None and connection.owner is not None and connection.owner.lower() == principal.lower()


def _may_change(connection: VideoConnection, principal: str | None, write_groups: frozenset[str]) -> bool:
    return _owns(connection, principal) or not connection.groups.isdisjoint(write_groups)


class VideoService:
    """Video connections by group, over a ``VideoRecords`` store."""

    def __init__(self, records: VideoRecords, clock: Clock, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 queue_size: int = DEFAULT_QUEUE) -> None:
        self._records = records
        self._clock = clock
        self._max = max_connections
        self._queue: deque[_Sighting] = deque()
        self._queue_size = queue_size
        self._wake = asyncio.Event()
        self._closing = False
        self.counts: Counter[str] = Counter()

    # --- callers ------------------------------------------------------------------------------
    async def visible(self, who: VideoCaller) -> list[VideoConnection]:
        """Every connection ``who`` reads, URLs redacted unless ``who`` added it."""
        readable = [c for c in await self._records.all() if not c.groups.isdisjoint(who.read_groups)]
        return [view_for(c, who.principal) for c in readable]

    async def get(self, who: VideoCaller, uid: str) -> VideoConnection | None:
        """One connection as ``who`` may see it; None when absent or not readable (answered alike)."""
        found = await self._records.get(uid)
        if found is None or found.groups.isdisjoint(who.read_groups):
            return None
        return view_for(found, who.principal)

    async def stream_url(self, who: VideoCaller, feed_uid: str) -> str | None:
        """The stored URL (credentials included, for the server's own use only) of the feed ``feed_uid`` in a
        connection ``who`` reads: the connection of that uid first, else the first connection holding such a
        feed. None when there is none."""
        records = [c for c in await self._records.all() if not c.groups.isdisjoint(who.read_groups)]
        records.sort(key=lambda c: c.uid != feed_uid)
        for connection in records:
            for feed in connection.feeds:
                if feed.uid == feed_uid:
                    return feed.url
        return None

    async def put(self, who: VideoCaller, uid: str, alias: str, feeds: list[VideoFeed], *,
                  active: bool = True) -> VideoConnection:
        """Add or replace a connection in ``who``'s write groups; returns it as ``who`` sees it.

        Raises :class:`BadVideo` (invalid), :class:`VideoDenied` (not ``who``'s to change) or
        :class:`VideoFull`.
        """
        uid, alias = check_uid(uid), check_alias(alias)
        if not feeds:
            raise BadVideo("a video connection needs at least one feed")
        if len(feeds) > MAX_FEEDS_PER_CONNECTION:
            raise BadVideo(f"a video connection holds at most {MAX_FEEDS_PER_CONNECTION} feeds")
        if not who.write_groups:
            raise VideoDenied("no group to add the connection in")
        stored = await self._write(uid, alias, tuple(feeds), active, who.principal, who.write_groups,
                                   self._clock.now_ms())
        self.counts["put"] += 1
        return view_for(stored, who.principal)

    async def delete(self, who: VideoCaller, uid: str) -> bool:
        """Remove a connection; False when absent or not readable. :class:`VideoDenied` if read-only to ``who``."""
        found = await self._records.get(uid)
        if found is None or found.groups.isdisjoint(who.read_groups):
            return False
        if not _may_change(found, who.principal, who.write_groups):
            raise VideoDenied("the connection belongs to other groups")
        self.counts["deleted"] += 1
        return await self._records.delete(uid)

    async def _write(self, uid: str, alias: str, feeds: tuple[VideoFeed, ...], active: bool, principal: str | None,
                     groups: frozenset[str], now_ms: int) -> VideoConnection:
        existing = await self._records.get(uid)
        if existing is None:
            if await self._records.count() >= self._max:
                raise VideoFull(f"the registry holds its maximum of {self._max} video connections")
            connection = VideoConnection(uid=uid, alias=alias, feeds=feeds, groups=groups, owner=principal,
                                         updated_ms=now_ms, active=active)
        else:
            if not _may_change(existing, principal, groups):
                raise VideoDenied("the connection belongs to other groups")
            if not _owns(existing, principal):
                feeds = _keep_secrets(existing, feeds)
            # The owner and the groups stay those of the first adder: an edit does not move a feed.
            connection = msgspec.structs.replace(existing, alias=alias, feeds=feeds, updated_ms=now_ms, active=active)
        await self._records.put(connection)
        return connection

    # --- b-i-v CoT ------------------------------------------------------------------------------
    @staticmethod
    def observes_type(cot_type: str) -> bool:
        """The CoT types :meth:`observe` acts on (the ingest path calls it for these only)."""
        return cot_type == VIDEO_COT_TYPE

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """Ingest hook: queue the feed a ``b-i-v`` event describes (cheap; the write happens in :meth:`run`)."""
        event = envelope.event
        if event.type != VIDEO_COT_TYPE:
            return
        try:
            feed = feed_from_cot(event.detail.xml, uid=event.uid, callsign=event.detail.callsign,
                                 lat=event.point.lat, lon=event.point.lon)
        except BadVideo as exc:
            self.counts["cot_rejected"] += 1
            log.info("video CoT refused", extra={"uid": event.uid, "reason": str(exc)})
            return
        if len(self._queue) >= self._queue_size:
            self.counts["cot_dropped"] += 1
            return
        origin = envelope.origin
        self._queue.append(_Sighting(feed=feed, groups=origin.groups, owner=origin.principal, time_ms=event.time))
        self._wake.set()

    async def run(self) -> None:
        """Write queued ``b-i-v`` feeds until :meth:`close`."""
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._register(self._queue.popleft())

    async def _register(self, s: _Sighting) -> None:
        try:
            await self._write(s.feed.uid, s.feed.alias, (s.feed,), True, s.owner, s.groups, s.time_ms)
        except (VideoDenied, VideoFull) as exc:
            self.counts["cot_refused"] += 1
            log.info("video CoT not registered", extra={"uid": s.feed.uid, "reason": str(exc)})
            return
        self.counts["cot_registered"] += 1

    async def close(self) -> None:
        """Stop :meth:`run` and close the store."""
        self._closing = True
        self._wake.set()
        await self._records.close()

    def counters(self) -> list[tuple[str, str, float]]:
        """For ``ServerMetrics.add_counters``."""
        c = self.counts
        return [
            ("rallypoint_video_put_total", "Video connections added or changed over HTTP", float(c["put"])),
            ("rallypoint_video_deleted_total", "Video connections removed over HTTP", float(c["deleted"])),
            ("rallypoint_video_cot_registered_total", "b-i-v events registered as feeds", float(c["cot_registered"])),
            ("rallypoint_video_cot_rejected_total", "b-i-v events with no acceptable feed", float(c["cot_rejected"])),
            ("rallypoint_video_cot_refused_total", "b-i-v events for a uid of other groups, or past the maximum",
             float(c["cot_refused"])),
            ("rallypoint_video_cot_dropped_total", "b-i-v events dropped: too many waiting", float(c["cot_dropped"])),
        ]


def _keep_secrets(existing: VideoConnection, feeds: tuple[VideoFeed, ...]) -> tuple[VideoFeed, ...]:
    old = {f.uid: f for f in existing.feeds}
    kept = []
    for feed in feeds:
        before = old.get(feed.uid)
        if before is not None and feed.url == redact_url(before.url):
            feed = msgspec.structs.replace(feed, url=before.url)
        kept.append(feed)
    return tuple(kept)
