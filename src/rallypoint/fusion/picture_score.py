"""Score a server's CoT picture against a scenario's truth with OSPA, as the picture arrives.

Bytes a CoT client receives go in (``receive``); the latest event of every feed track is kept
(uids ``ICAO-``, ``MMSI-``, ``GPS-``, ``APRS-`` and identity-less ``trk-`` tracks; a delete event
or a stale time in the past removes it). ``sample(now)`` carries each track along its course and
speed to ``now`` and compares the set with the truth at the matching scenario time (the caller
maps wall-clock time to scenario time) in the scenario's local frame. Pure: bytes and times in,
numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from lxml import etree

from rallypoint.fusion.metrics import LocalFrame, Ospa, Points, ospa

FEED_TRACK_PREFIXES = ("ICAO-", "MMSI-", "GPS-", "APRS-", "trk-")
MAX_PENDING = 1 << 20  # bytes of an unfinished event kept; more is garbage and dropped
_END = b"</event>"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True)
class _Seen:
    time: datetime
    stale: datetime
    lat: float
    lon: float
    course_deg: float | None
    speed_mps: float | None


@dataclass(frozen=True)
class Sample:
    """One scoring instant: scenario time, OSPA and how many tracks and targets were compared."""

    scenario_s: float
    ospa: Ospa
    tracks: int
    targets: int


class PictureScore:
    """Latest feed tracks from a CoT stream, scored against ``truth(scenario_s) -> (n, 2) points``."""

    def __init__(
        self,
        frame: LocalFrame,
        truth: Callable[[float], Points],
        *,
        c: float = 500.0,
        p: float = 2.0,
    ) -> None:
        self._frame = frame
        self._truth = truth
        self._c, self._p = c, p
        self._pending = b""
        self._tracks: dict[str, _Seen] = {}
        self.rejected = 0
        self.samples: list[Sample] = []

    def receive(self, data: bytes) -> None:
        """Take whatever bytes arrived; complete events update the picture, bad ones are counted."""
        self._pending += data
        while (end := self._pending.find(_END)) >= 0:
            chunk, self._pending = self._pending[: end + len(_END)], self._pending[end + len(_END):]
            start = chunk.find(b"<event")
            if start >= 0:
                self._event(chunk[start:])
        if len(self._pending) > MAX_PENDING:
            self._pending = b""
            self.rejected += 1

    def _event(self, raw: bytes) -> None:
        try:
            event = etree.fromstring(raw, _PARSER)
            uid = event.get("uid", "")
            if not uid.startswith(FEED_TRACK_PREFIXES):
                return
            if event.get("type", "").startswith("t-x-d"):
                self._tracks.pop(uid, None)
                return
            point = event.find("point")
            track = event.find("detail/track")
            if point is None:
                raise ValueError("an event without a point")
            self._tracks[uid] = _Seen(
                time=_cot_time(event.get("time", "")), stale=_cot_time(event.get("stale", "")),
                lat=float(point.get("lat", "nan")), lon=float(point.get("lon", "nan")),
                course_deg=float(track.get("course", "nan")) if track is not None else None,
                speed_mps=float(track.get("speed", "nan")) if track is not None else None,
            )
        except (etree.XMLSyntaxError, ValueError):
            self.rejected += 1

    def estimates(self, now: datetime) -> Points:
        """East/north of every live feed track carried to ``now``."""
        points = []
        for seen in self._tracks.values():
            if seen.stale < now or not (math.isfinite(seen.lat) and math.isfinite(seen.lon)):
                continue
            xy = self._frame.to_local(seen.lat, seen.lon)[0]
            if seen.course_deg is not None and seen.speed_mps is not None and math.isfinite(seen.speed_mps):
                dt = max(0.0, (now - seen.time).total_seconds())
                course = math.radians(seen.course_deg)
                xy += (seen.speed_mps * math.sin(course) * dt, seen.speed_mps * math.cos(course) * dt)
            points.append(xy)
        return np.array(points, dtype=np.float64).reshape(-1, 2)

    def sample(self, now: datetime, scenario_s: float) -> Sample:
        """Score the picture at wall-clock ``now``, which is ``scenario_s`` into the scenario (kept in ``samples``)."""
        estimates, truth = self.estimates(now), self._truth(scenario_s)
        result = Sample(scenario_s, ospa(estimates, truth, c=self._c, p=self._p), len(estimates), len(truth))
        self.samples.append(result)
        return result


def _cot_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
