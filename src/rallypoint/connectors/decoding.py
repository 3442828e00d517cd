"""Pieces every decoder shares: a bounded line splitter, a bounded per-object state map, and the
position and number checks that turn bad input into a counted reject instead of an exception."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from rallypoint.connectors.base import Rejects

# Longest sentence any line source sends legitimately is far below this (NMEA caps at 82, SBS
# lines run to ~150, APRS-IS packets to ~512); anything longer is junk or an attack.
DEFAULT_MAX_LINE = 4096

K = TypeVar("K")
V = TypeVar("V")


class LineSplitter:
    """Bytes in, complete lines out; a line longer than ``max_line`` is dropped and counted ``too_long``.

    The partial line kept between calls never exceeds ``max_line`` bytes: past that, bytes are
    skipped until the next newline, so a peer that never sends one cannot grow memory.
    """

    def __init__(self, rejects: Rejects, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._rejects = rejects
        self._max = max_line
        self._partial = bytearray()
        self._skipping = False

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held for the next call."""
        return len(self._partial)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The complete, non-empty lines ``data`` finishes, without line endings."""
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            piece = data[start:end]
            start = end + 1
            if self._skipping:
                self._skipping = False
                continue
            if self._partial:
                self._partial += piece
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = piece
            if len(line) > self._max:
                self._rejects.add("too_long")
                continue
            line = line.strip()
            if line:
                yield line
        if self._skipping or start >= len(data):
            return
        self._partial += data[start:]
        if len(self._partial) > self._max:
            # Counted now, once: the rest of this line is skipped whenever it arrives.
            self._rejects.add("too_long")
            self._partial.clear()
            self._skipping = True


class BoundedMap(Generic[K, V]):
    """Per-object state (per ICAO address, MMSI...) keeping the ``capacity`` most recently touched keys."""

    def __init__(self, capacity: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._capacity = capacity
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        """The value for ``key`` (marking it recently used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``; the least recently touched key goes when the map is full."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)
            self.evicted += 1

    def pop(self, key: K) -> V | None:
        """Remove and return the value for ``key``, or None."""
        return self._items.pop(key, None)


def position_problem(lat: float, lon: float) -> str | None:
    """``"impossible_position"`` for NaN, out-of-range or 0,0 (a receiver's "no fix") coordinates, else None."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return "impossible_position"
    if abs(lat) > 90.0 or abs(lon) > 180.0:
        return "impossible_position"
    if lat == 0.0 and lon == 0.0:
        return "impossible_position"
    return None


def finite(value: object) -> float | None:
    """``value`` as a finite float, or None for anything else (strings, NaN, booleans, missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def number(text: str | bytes) -> float | None:
    """A decimal field of a text record as a finite float, or None when empty or not a number."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def time_of_day_near(reference: datetime, hour: int, minute: int, second: float) -> datetime:
    """The instant with this UTC time of day closest to ``reference`` (a day boundary may lie between)."""
    whole = int(second)
    candidate = reference.replace(
        hour=hour, minute=minute, second=whole, microsecond=round((second - whole) * 1e6) % 1_000_000
    )
    delta = (candidate - reference).total_seconds()
    if delta > 43200:
        candidate -= timedelta(days=1)
    elif delta < -43200:
        candidate += timedelta(days=1)
    return candidate


KNOT_MPS = 1852.0 / 3600.0
FOOT_M = 0.3048
