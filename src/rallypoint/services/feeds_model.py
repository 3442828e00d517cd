"""What the feed service shows and needs: a feed as the API answers it, and the tracker's interface."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

import msgspec

from rallypoint.fusion.pairing import MergeProposal
from rallypoint.model.track import Identity, Observation, TrackReport
from rallypoint.services.feed_types import FeedStatistics


class Tracker(Protocol):
    """What the service needs of the fusion tracker (``fusion.tracker.Tracker``)."""

    def update_many(self, now: datetime, observations: Iterable[Observation]) -> list[TrackReport]: ...

    def expire(self, now: datetime) -> list[TrackReport]: ...

    def statistics(self) -> Mapping[str, int]: ...

    def proposals(self) -> list[MergeProposal]: ...

    def accept_proposal(self, proposal_id: str) -> list[TrackReport]: ...

    def reject_proposal(self, proposal_id: str) -> None: ...

    def merge_identities(self, primary: Identity, secondary: Identity) -> list[TrackReport]: ...


class FeedView(msgspec.Struct, frozen=True, kw_only=True):
    """A feed as the API shows it. ``origin`` is ``config`` (configuration, ``--feed``) or ``api``."""

    name: str
    url: str
    format: str
    transport: str
    groups: list[str]
    stale_s: float | None
    quality: float | None
    origin: str
    paused: bool
    # Why the feed stopped for good (its port could not be bound...); None while it runs.
    error: str | None = None
    statistics: FeedStatistics
    # The scripted exercise whose traffic the feed's tracks are (docs/exercises.md); None for a live feed.
    exercise: str | None = None
