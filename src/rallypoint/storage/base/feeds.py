"""What the feed store keeps: track merges an operator accepted, re-applied to the tracker at start.

A merge names two identities (kind and value, as ``model.track.Identity``): reports of the
``secondary`` update the track of the ``primary`` (docs/fusion.md, "Merging tracks"). The pair is
the key: accepting the same pair again changes nothing.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class MergeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted merge: who accepted it and when (epoch milliseconds)."""

    primary_kind: str
    primary_value: str
    secondary_kind: str
    secondary_value: str
    accepted_ms: int
    operator: str


class FeedRecords(Protocol):
    """Accepted merges."""

    async def add_merge(self, record: MergeRecord) -> bool:
        """Keep an accepted merge; False (and nothing changed) if that pair is already kept."""
        ...

    async def merges(self) -> list[MergeRecord]:
        """Every accepted merge, oldest first."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
