"""What the feed store keeps: track merges an operator accepted, re-applied to the tracker at start,
and feeds added through the API, started again when their node starts.

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


class FeedRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A feed added through the API: the node that runs it, its definition, who added it and when."""

    node: str
    name: str
    url: str
    groups: list[str]
    stale_s: float | None
    quality: float | None
    added_ms: int
    operator: str


class FeedRecords(Protocol):
    """Accepted merges and feeds added at run time."""

    async def add_merge(self, record: MergeRecord) -> bool:
        """Keep an accepted merge; False (and nothing changed) if that pair is already kept."""
        ...

    async def merges(self) -> list[MergeRecord]:
        """Every accepted merge, oldest first."""
        ...

    async def add_feed(self, record: FeedRecord) -> bool:
        """Keep a feed added at run time; False (nothing changed) if its node already keeps one by that name."""
        ...

    async def remove_feed(self, node: str, name: str) -> bool:
        """Forget a feed of ``node``; False if there was none by that name."""
        ...

    async def feeds(self, node: str) -> list[FeedRecord]:
        """The feeds ``node`` runs, in the order they were added."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
