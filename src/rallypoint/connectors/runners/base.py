"""What every feed runner shares: backoff with jitter, the bounded observation buffer, pause/resume
and the counters behind ``statistics()``.

A runner reads bytes, hands them to the feed's sans-IO decoder at once (decoding is cheap) and puts
the observations in a bounded buffer; a second task drains the buffer into the sink (the feed
service's tracker). When the tracker falls behind, the buffer drops its *oldest* observations:
a newer report of the same object supersedes them, so losing old ones costs least.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Sequence
from datetime import datetime

from rallypoint.clock import Clock, ms_to_datetime
from rallypoint.connectors.base import Rejects
from rallypoint.model.track import Observation
from rallypoint.services.feed_types import FeedStatistics, ObservationSink, merged

DEFAULT_BUFFER = 20_000
# Observations handed to the sink per call: big enough to amortise, small enough to keep the loop fair.
DRAIN_BATCH = 500


class Backoff:
    """Exponential backoff with "equal jitter": half the step is fixed, half drawn from ``rng``.

    The generator is passed in (seeded in tests) so delays are reproducible; several feeds to the
    same host never retry in lock-step.
    """

    def __init__(self, rng: random.Random, *, initial_s: float = 1.0, maximum_s: float = 60.0) -> None:
        if not 0 < initial_s <= maximum_s:
            raise ValueError("backoff: need 0 < initial_s <= maximum_s")
        self._rng = rng
        self._initial = initial_s
        self._maximum = maximum_s
        self._attempt = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call doubles the step up to the maximum."""
        step = min(self._maximum, self._initial * float(2 ** min(self._attempt, 30)))
        self._attempt += 1
        return step / 2 + self._rng.uniform(0.0, step / 2)

    def reset(self) -> None:
        """A connection worked: the next failure starts again from the initial step."""
        self._attempt = 0


class ObservationBuffer:
    """Bounded FIFO of observations; overflow policy: drop the oldest (counted)."""

    policy = "drop-oldest"

    def __init__(self, max_items: int = DEFAULT_BUFFER) -> None:
        if max_items < 1:
            raise ValueError("buffer: max_items must be at least 1")
        self._items: deque[Observation] = deque()
        self._max = max_items
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, observations: Sequence[Observation]) -> None:
        """Queue ``observations``; drop the oldest beyond the bound."""
        if not observations:
            return
        self._items.extend(observations)
        excess = len(self._items) - self._max
        for _ in range(max(0, excess)):
            self._items.popleft()
        self.dropped += max(0, excess)
        self._ready.set()

    async def take(self, limit: int = DRAIN_BATCH) -> list[Observation]:
        """Wait for observations, then take up to ``limit`` of them, oldest first."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        batch = [self._items.popleft() for _ in range(min(limit, len(self._items)))]
        return batch

    def __len__(self) -> int:
        return len(self._items)


class RunnerCore:
    """State shared by the runners: name, clock, sink, buffer, pause flag and counters."""

    def __init__(self, name: str, clock: Clock, sink: ObservationSink, *, buffer_items: int = DEFAULT_BUFFER) -> None:
        self.name = name
        self.clock = clock
        self.sink = sink
        self.buffer = ObservationBuffer(buffer_items)
        # The runner's own rejects (too_large, http_status...); the decoders' are attached below.
        self.rejects = Rejects()
        self._decoder_rejects: list[Rejects] = []
        self.bytes = 0
        self.observations = 0
        self.documents = 0
        self.reconnects = 0
        self.connections = 0
        self.dropped_paused = 0
        self.last_error: str | None = None
        self._running = asyncio.Event()
        self._running.set()

    def now(self) -> datetime:
        """The receive time stamped on what arrives now."""
        return ms_to_datetime(self.clock.now_ms())

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        """Stop taking input until :meth:`resume`."""
        self._running.clear()

    def resume(self) -> None:
        """Take input again."""
        self._running.set()

    async def wait_running(self) -> None:
        """Return at once unless paused; else when resumed."""
        await self._running.wait()

    def attach(self, rejects: Rejects) -> None:
        """Count a decoder's rejects with the feed's while the decoder is in use."""
        self._decoder_rejects.append(rejects)

    def detach(self, rejects: Rejects) -> None:
        """A decoder is done (its connection closed): keep its counts, let it go."""
        self._decoder_rejects.remove(rejects)
        for reason, n in rejects.snapshot().items():
            self.rejects.add(reason, n)

    def reject_counts(self) -> dict[str, int]:
        """Skipped input per reason, runner and decoders together."""
        return merged([self.rejects.snapshot(), *(r.snapshot() for r in self._decoder_rejects)])

    def received(self, size: int, observations: Sequence[Observation]) -> None:
        """Count ``size`` bytes and queue what they decoded to."""
        self.bytes += size
        self.observations += len(observations)
        self.buffer.put(observations)

    def failed(self, error: BaseException | str) -> None:
        """Remember the latest transport error (shown in the statistics)."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.last_error = text[:300]

    async def drain(self) -> None:
        """Hand buffered observations to the sink until cancelled."""
        while True:
            batch = await self.buffer.take()
            self.sink(self.name, batch)
            # Let readers and other feeds run between batches.
            await asyncio.sleep(0)

    def statistics(self) -> FeedStatistics:
        """The counters as a frozen struct."""
        return FeedStatistics(
            bytes=self.bytes, observations=self.observations, documents=self.documents,
            rejects=self.reject_counts(), reconnects=self.reconnects, last_error=self.last_error,
            connected=self.connections > 0, paused=self.paused, buffered=len(self.buffer),
            dropped_overflow=self.buffer.dropped, dropped_paused=self.dropped_paused,
            overflow_policy=ObservationBuffer.policy,
        )

