"""Initiator and deleter: when a track is shown (tentative -> confirmed) and when it goes (deleted).

An identity-less track is confirmed after M hits before it has missed more than N - M expected
reports (M of N, counted in the domain's revisit interval); a track with a source-given identity
needs ``identified_confirm_hits`` (default one). A confirmed track is deleted when it had no update
for its domain's stale time; a tentative one as soon as it can no longer reach M of N.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rallypoint.fusion.geodesy import Index
from rallypoint.fusion.table import TrackMeta, TrackTable
from rallypoint.model.track import TrackStatus


class Initiator(Protocol):
    """Counts hits and decides confirmation."""

    def on_hit(self, meta: TrackMeta, gap_s: float, revisit_s: float) -> bool:
        """Count one update ``gap_s`` after the previous; True when the track has just been confirmed."""
        ...


class Deleter(Protocol):
    """Picks the tracks to delete at a given time."""

    def doomed(self, table: TrackTable, now_s: float) -> Index:
        """Slots of live tracks that must be deleted at ``now_s`` (epoch seconds)."""
        ...


class MOfNInitiator:
    """M hits before N - M misses confirms; too many misses start the count again."""

    def __init__(self, hits: int, window: int, identified_hits: int) -> None:
        self.hits = hits
        self.window = window
        self.identified_hits = identified_hits

    def on_hit(self, meta: TrackMeta, gap_s: float, revisit_s: float) -> bool:
        """Count one update ``gap_s`` after the previous; True when the track has just been confirmed."""
        if meta.status is not TrackStatus.TENTATIVE:
            return False
        if meta.hits and gap_s > revisit_s:
            meta.misses += int(gap_s / revisit_s + 0.5) - 1
            if meta.misses > self.window - self.hits:
                meta.hits = 0
                meta.misses = 0
        meta.hits += 1
        needed = self.identified_hits if meta.identity is not None else self.hits
        if meta.hits >= needed:
            meta.status = TrackStatus.CONFIRMED
            return True
        return False


class StalenessDeleter:
    """Confirmed tracks die of their domain's stale time, tentative ones of too many misses."""

    def __init__(self, hits: int, window: int) -> None:
        self.allowed_misses = window - hits

    def doomed(self, table: TrackTable, now_s: float) -> Index:
        """Slots of live tracks that must be deleted at ``now_s`` (epoch seconds)."""
        slots = table.live_slots()
        if slots.size == 0:
            return slots
        age = now_s - table.t[slots]
        stale = age > table.stale[slots]
        tentative = ~table.confirmed[slots]
        if tentative.any():
            misses = np.fromiter((table.get(s).misses for s in slots[tentative].tolist()), dtype=float)
            # Whole revisit intervals elapsed since the last hit are misses too.
            expired = (age[tentative] / table.revisit[slots[tentative]]).astype(int) + misses > self.allowed_misses
            stale[np.flatnonzero(tentative)[expired]] = True
        doomed: Index = slots[stale]
        return doomed
