"""The figures of an after-action report, as computed by ``aar.compute`` and rendered by ``aar.html``.

Times are epoch milliseconds, distances metres. Each field's definition is in docs/exercises.md
("After-action report").
"""

# mypy: disallow-untyped-defs, disallow-any-generics, warn-return-any

from __future__ import annotations

from bisect import bisect_right

import msgspec

NO_TEAM = "(no team)"


class Response(msgspec.Struct, frozen=True):
    """The first response to an inject: what it was, when, by whom and where the report found it."""

    what: str
    at_ms: int
    by: str
    source: str


class Inject(msgspec.Struct, frozen=True):
    """One inject the runner performed, as history recorded it, with its first response if any."""

    exercise: str
    id: str
    kind: str
    unit: str
    at_ms: int
    uid: str
    type: str
    # Where the inject's first event was, (lon, lat), when it had a position fix.
    where: tuple[float, float] | None
    # The task, designation or emergency uid the inject created ("" when none was recognised).
    target: str
    # What counts as its response: "emergency", "task", "designation", or "" (none is measured).
    awaits: str
    response: Response | None
    # Time from the inject to its first response (None without one).
    latency_ms: int | None


class TimelineEntry(msgspec.Struct, frozen=True):
    """A line of the timeline: injects, responses, exercise control actions, emergencies."""

    at_ms: int
    what: str
    detail: str
    simulated: bool


class LinkStats(msgspec.Struct, frozen=True):
    """Delivery of one reporting unit's position reports to the server (one link: unit to server)."""

    uid: str
    callsign: str
    team: str
    unit: str
    simulated: bool
    delivered: int
    late: int
    lost: int
    interval_ms: int | None
    mean_delay_ms: float
    max_delay_ms: int
    # Reports the unit must have sent: those stored plus those missing from its rhythm.
    sent: int


class TeamSummary(msgspec.Struct, frozen=True):
    """One team's units, movement and activity."""

    team: str
    simulated_units: int
    live_units: int
    distance_m: float
    reports: int
    emergencies: int
    tasks: int


class Track(msgspec.Struct, frozen=True):
    """A unit's path for the map, thinned evenly to a bounded number of points."""

    uid: str
    callsign: str
    team: str
    simulated: bool
    points: tuple[tuple[float, float], ...]  # (lon, lat)
    times: tuple[int, ...]  # the report time of each point

    def until(self, at_ms: int) -> Track:
        """The track as it stood at ``at_ms``: its points reported at or before then."""
        kept = bisect_right(self.times, at_ms)
        return Track(self.uid, self.callsign, self.team, self.simulated, self.points[:kept], self.times[:kept])


class Report(msgspec.Struct, frozen=True):
    """Everything the report shows."""

    since_ms: int
    until_ms: int
    exercise: str | None
    late_ms: int
    # Rows read in the window, rows kept (this exercise and live traffic), rows of other exercises left out.
    rows_read: int
    rows_kept: int
    rows_other_exercises: int
    exercises_seen: tuple[str, ...]
    injects: tuple[Inject, ...]
    timeline: tuple[TimelineEntry, ...]
    timeline_cut: int
    links: tuple[LinkStats, ...]
    teams: tuple[TeamSummary, ...]
    tracks: tuple[Track, ...]
    # (west, south, east, north) of every position in scope, None when there is none.
    bbox: tuple[float, float, float, float] | None
