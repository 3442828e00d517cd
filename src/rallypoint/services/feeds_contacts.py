"""TAK users' own positions as tracker observations, so an operator can be offered a merge.

A TAK user's position reaches maps from the user's client through ingest, not through the feed
service. For fusion to notice that an APRS tracker (or an AIS transponder...) moves with a TAK
user, the feed service hands the tracker those positions too: every published atom event with a
callsign, not radar-like (``how="m-r"``), not one of the feed service's own tracks, becomes an
observation of source ``tak-clients`` with the identity ``tak:<uid>``. Their tracks (``TAK-<uid>``)
are never said as CoT: the user's own events already are. Positions wait here, the latest per uid,
until the service's next tick folds them in as one batch.
"""

from __future__ import annotations

from datetime import datetime

from rallypoint.clock import ms_to_datetime
from rallypoint.fusion.identity import uid_for
from rallypoint.model.cot import UNKNOWN_ERROR, CotEvent
from rallypoint.model.cot_type import is_atom
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation
from rallypoint.routing.envelope import Envelope

CLIENT_SOURCE = "tak-clients"
SOURCES_MARK = b"<__rallypoint_sources"
# Contacts waiting for the next tick, and track uids remembered as contacts' (cleared past this).
MAX_WAITING = 20_000
MAX_REMEMBERED = 200_000
_DOMAINS = {"A": Domain.AIR, "S": Domain.SEA, "U": Domain.SEA, "G": Domain.GROUND}


def is_user_position(event: CotEvent) -> bool:
    """Whether the event is a TAK user's position: an atom with a callsign, neither radar-like nor a feed track."""
    detail = event.detail
    return (bool(detail.callsign) and event.how != "m-r" and is_atom(event.type)
            and SOURCES_MARK not in detail.xml)


def contact_observation(event: CotEvent, received_at: datetime) -> Observation | None:
    """The observation a TAK user's position event makes, or None when it is not one."""
    if not is_user_position(event):
        return None
    detail = event.detail
    point = event.point
    if not (-90.0 <= point.lat <= 90.0 and -180.0 <= point.lon <= 180.0):
        return None
    parts = event.type.split("-")
    return Observation(
        source=CLIENT_SOURCE,
        received_at=received_at,
        source_time=ms_to_datetime(event.time),
        lat=point.lat,
        lon=point.lon,
        domain=_DOMAINS.get(parts[2], Domain.UNKNOWN) if len(parts) > 2 else Domain.UNKNOWN,
        identity=Identity(kind=IdentityKind.TAK, value=event.uid),
        name=detail.callsign,
        alt_m=point.hae if point.hae != UNKNOWN_ERROR else None,
        course_deg=detail.course % 360.0 if detail.course is not None else None,
        speed_mps=detail.speed if detail.speed is not None and detail.speed >= 0 else None,
        ce_m=point.ce if 0 < point.ce < UNKNOWN_ERROR else None,
        category=event.type,
    )


class ContactPositions:
    """The latest position of each TAK user since the last :meth:`take`, and which tracks are users'."""

    def __init__(self, limit: int = MAX_WAITING) -> None:
        self._limit = limit
        self._waiting: dict[str, Observation] = {}
        self._tracks: set[str] = set()
        self.taken = 0
        self.dropped = 0

    def offer(self, envelope: Envelope, now_ms: int) -> None:
        """Keep the envelope's position if it is a TAK user's (not stale at ``now_ms``)."""
        event = envelope.event
        # Most publications on a busy feed server are the feed service's own tracks: cheap checks first.
        if event.stale <= now_ms or not is_user_position(event):
            return
        if len(self._waiting) >= self._limit and event.uid not in self._waiting:
            self.dropped += 1  # the next position of that user comes within its report interval
            return
        obs = contact_observation(event, ms_to_datetime(now_ms))
        if obs is not None:
            self._waiting[event.uid] = obs

    def take(self) -> list[Observation]:
        """The waiting positions (emptied); their tracks are remembered as users'."""
        if not self._waiting:
            return []
        batch = list(self._waiting.values())
        self._waiting.clear()
        if len(self._tracks) >= MAX_REMEMBERED:
            self._tracks.clear()
        for obs in batch:
            assert obs.identity is not None
            self._tracks.add(uid_for(obs.identity))
        self.taken += len(batch)
        return batch

    def is_user(self, track_uid: str) -> bool:
        """Whether the track is a TAK user's (never said as CoT by the feed service)."""
        return track_uid in self._tracks
