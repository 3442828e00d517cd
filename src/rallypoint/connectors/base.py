"""The two decoder shapes every source takes, and the reject counter they share.

A stream source (TCP, UDP, serial, a growing file) hands its decoder whatever bytes arrived; the
decoder keeps a partial line or fragment until the rest comes. A document source (an HTTP poll of
``aircraft.json``, a GeoJSON or KML file) hands over one whole document at a time. Neither does
I/O nor reads the clock: the runner passes the receive time in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from rallypoint.model.track import Observation


class Rejects:
    """Counts of skipped input per reason (``bad_checksum``, ``malformed``, ``impossible_position``...)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, reason: str, n: int = 1) -> None:
        """Count ``n`` pieces of input skipped for ``reason``."""
        self._counts[reason] += n

    def snapshot(self) -> Mapping[str, int]:
        """A copy of the counts, for ``statistics()`` and ``/metrics``."""
        return dict(self._counts)

    @property
    def total(self) -> int:
        return sum(self._counts.values())


class StreamDecoder(Protocol):
    """Bytes of a stream in, observations out; partial input is kept for the next call."""

    rejects: Rejects

    def receive(self, data: bytes, received_at: datetime) -> list[Observation]:
        """Decode what ``data`` completes; never raises on bad input (it is counted in ``rejects``)."""
        ...


class DocumentDecoder(Protocol):
    """One whole document in (a poll answer, a file), observations out."""

    rejects: Rejects

    def decode(self, document: bytes, received_at: datetime) -> list[Observation]:
        """Decode the document; never raises on bad input (it is counted in ``rejects``)."""
        ...
