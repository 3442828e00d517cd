"""What the feed service and the feed runners agree on: a runner's shape and its statistics.

The runners live in ``connectors`` (above this layer) and the service that owns them here; the
node hands the service a function that opens a runner for a feed, so neither imports the other's
concrete classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import msgspec

from rallypoint.config import FeedConfig
from rallypoint.model.track import Observation

# Where a runner hands what it decoded: the feed's name and a batch of observations.
ObservationSink = Callable[[str, Sequence[Observation]], None]


class FeedStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """One feed's counters since it was started (``GET /api/feeds``, ``/metrics``).

    ``rejects`` counts skipped input per reason (decoder reasons plus the runner's own, such as
    ``too_large`` or ``http_status``). ``buffered`` observations wait for the tracker; past the
    buffer's bound the oldest are dropped (``dropped_overflow``): a newer report of the same object
    supersedes them. ``dropped_paused`` counts datagrams that arrived while the feed was paused.
    """

    bytes: int = 0
    observations: int = 0
    documents: int = 0
    rejects: dict[str, int] = msgspec.field(default_factory=dict)
    reconnects: int = 0
    last_error: str | None = None
    connected: bool = False
    paused: bool = False
    buffered: int = 0
    dropped_overflow: int = 0
    dropped_paused: int = 0
    overflow_policy: str = "drop-oldest"


class FeedRunner(Protocol):
    """A running feed: carries bytes to its decoder and the observations to the sink."""

    async def run(self) -> None:
        """Carry the feed until cancelled; reconnects and bad input never end it."""
        ...

    def pause(self) -> None:
        """Stop taking input (streams stop reading; datagrams are dropped and counted)."""
        ...

    def resume(self) -> None:
        """Take input again."""
        ...

    def statistics(self) -> FeedStatistics:
        """The feed's counters now."""
        ...


class FeedInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A feed as validated: its name, public URL (no secrets), format, transport and audience."""

    name: str
    url: str
    format: str
    transport: str
    groups: tuple[str, ...] = ()
    stale_s: float | None = None
    quality_m: float | None = None


class LayerItem(msgspec.Struct, frozen=True):
    """One item of a map layer (GeoJSON, KML): a point, a line or a polygon; ``points`` are (lat, lon)."""

    id: str
    kind: str  # "point", "line" or "polygon" (ring closed)
    points: tuple[tuple[float, float], ...]
    name: str | None = None


# Where a layer feed hands each whole document it read: the feed's name and every item in it (an
# item missing from the next document was removed from the layer).
LayerSink = Callable[[str, Sequence[LayerItem]], None]

# Validates a feed definition and builds its runner around the sinks; raises ConfigError when the
# definition cannot be used (the message says why).
FeedOpener = Callable[[FeedConfig, ObservationSink, LayerSink], tuple[FeedInfo, FeedRunner]]


def rejects_total(stats: FeedStatistics) -> int:
    """Every skipped piece of input of a feed, whatever the reason."""
    return sum(stats.rejects.values())


def merged(counts: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """Per-reason counts added up."""
    out: dict[str, int] = {}
    for one in counts:
        for reason, n in one.items():
            out[reason] = out.get(reason, 0) + n
    return out
