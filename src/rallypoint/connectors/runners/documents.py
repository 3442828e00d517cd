"""Document feeds: an HTTP poller (``aircraft.json``, GeoJSON/KML URLs) and a file watcher (GeoJSON,
KML/KMZ, a saved ``aircraft.json``).

Both hand one whole document at a time to the feed's decoder, and only when it changed: the poller
sends the previous answer's ``ETag``/``Last-Modified`` (a 304 costs nothing) and the watcher looks at
the file's modification time and size, then its SHA-256, so touching a file without changing it
decodes nothing. Polling is the only portable way to learn of a remote change; for local files it
also needs no platform-specific watcher, and the interval is the feed's ``?interval=``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import ssl
from collections.abc import Callable
from pathlib import Path

from rallypoint.clock import Clock
from rallypoint.connectors.base import DocumentDecoder
from rallypoint.connectors.runners.base import Backoff, RunnerCore
from rallypoint.connectors.runners.http_get import HttpFetchError, fetch
from rallypoint.services.feed_types import FeedStatistics, ObservationSink

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class _DocumentRunner:
    def __init__(self, name: str, decoder_factory: Callable[[], DocumentDecoder], clock: Clock,
                 sink: ObservationSink, *, interval_s: float, max_bytes: int, buffer_items: int | None) -> None:
        self.core = RunnerCore(name, clock, sink) if buffer_items is None else RunnerCore(
            name, clock, sink, buffer_items=buffer_items)
        self._decoder = decoder_factory()
        self.core.attach(self._decoder.rejects)
        self._interval = interval_s
        self._max_bytes = max_bytes
        # Set after each completed check (tests wait on it rather than on time).
        self.checks = 0
        self.checked = asyncio.Event()

    def decode(self, document: bytes) -> None:
        """Decode one whole document into the buffer."""
        core = self.core
        core.documents += 1
        core.received(len(document), self._decoder.decode(document, core.now()))

    def _checked(self) -> None:
        self.checks += 1
        self.checked.set()

    def pause(self) -> None:
        """Stop checking for changes until :meth:`resume`."""
        self.core.pause()

    def resume(self) -> None:
        """Check again."""
        self.core.resume()

    def statistics(self) -> FeedStatistics:
        """The feed's counters now."""
        return self.core.statistics()


class HttpPollRunner(_DocumentRunner):
    """GET ``url`` every ``interval_s`` (backing off with jitter while it fails)."""

    def __init__(self, name: str, url: str, decoder_factory: Callable[[], DocumentDecoder], clock: Clock,
                 sink: ObservationSink, rng: random.Random, *, interval_s: float = 5.0, timeout_s: float = 10.0,
                 max_bytes: int = DEFAULT_MAX_BYTES, ssl_context: ssl.SSLContext | None = None,
                 backoff_max_s: float = 60.0, buffer_items: int | None = None) -> None:
        super().__init__(name, decoder_factory, clock, sink, interval_s=interval_s, max_bytes=max_bytes,
                         buffer_items=buffer_items)
        self._url = url
        self._timeout = timeout_s
        self._ssl = ssl_context
        self._backoff = Backoff(rng, initial_s=interval_s, maximum_s=max(interval_s, backoff_max_s))
        self._etag: str | None = None
        self._last_modified: str | None = None
        self._failing = False

    async def run(self) -> None:
        """Poll until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.core.drain(), name=f"feed-{self.core.name}-drain")
            while True:
                await self.core.wait_running()
                delay = self._interval if await self.poll_once() else self._backoff.next_delay()
                self._checked()
                await asyncio.sleep(delay)

    async def poll_once(self) -> bool:
        """One GET; True when the server answered usefully (200 or 304)."""
        core = self.core
        try:
            answer = await fetch(self._url, timeout_s=self._timeout, max_bytes=self._max_bytes, etag=self._etag,
                                 last_modified=self._last_modified, ssl_context=self._ssl)
        except HttpFetchError as exc:
            core.rejects.add(exc.reason)
            core.failed(exc.detail)
            self._lost()
            return False
        if answer.status == 304:
            self._up()
            return True
        if answer.status != 200:
            core.rejects.add("http_status")
            core.failed(f"HTTP {answer.status}")
            self._lost()
            return False
        self._etag = answer.headers.get("etag")
        self._last_modified = answer.headers.get("last-modified")
        self._up()
        self.decode(answer.body)
        return True

    def _up(self) -> None:
        if self._failing:
            self.core.reconnects += 1
        self._failing = False
        self.core.connections = 1
        self._backoff.reset()

    def _lost(self) -> None:
        self._failing = True
        self.core.connections = 0


class FileWatchRunner(_DocumentRunner):
    """Decode ``path`` now and again whenever its content changes (checked every ``interval_s``)."""

    def __init__(self, name: str, path: str, decoder_factory: Callable[[], DocumentDecoder], clock: Clock,
                 sink: ObservationSink, *, interval_s: float = 5.0, max_bytes: int = DEFAULT_MAX_BYTES,
                 buffer_items: int | None = None) -> None:
        super().__init__(name, decoder_factory, clock, sink, interval_s=interval_s, max_bytes=max_bytes,
                         buffer_items=buffer_items)
        self._path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._digest: bytes | None = None

    async def run(self) -> None:
        """Watch until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.core.drain(), name=f"feed-{self.core.name}-drain")
            while True:
                await self.core.wait_running()
                await self.check_once()
                self._checked()
                await asyncio.sleep(self._interval)

    async def check_once(self) -> bool:
        """Re-read the file if its time or size moved and decode it if its content changed; True when decoded."""
        core = self.core
        try:
            st = await asyncio.to_thread(os.stat, self._path)
        except OSError as exc:
            core.connections = 0
            core.failed(exc)
            return False
        core.connections = 1
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        if st.st_size > self._max_bytes:
            self._stamp = stamp
            core.rejects.add("too_large")
            core.failed(f"{self._path}: {st.st_size} bytes, limit {self._max_bytes}")
            return False
        try:
            data = await asyncio.to_thread(self._path.read_bytes)
        except OSError as exc:
            core.failed(exc)
            return False
        self._stamp = stamp
        digest = hashlib.sha256(data).digest()
        if digest == self._digest:
            return False
        self._digest = digest
        self.decode(data)
        return True
