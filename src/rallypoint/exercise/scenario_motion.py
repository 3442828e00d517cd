"""Checks of a unit's ``motion`` table: static, route, loiter, random walk, or a GPX/KML track."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any

from rallypoint.exercise.lines import Path
from rallypoint.exercise.model import Loiter, Motion, RandomWalk, Route, Static, Waypoint
from rallypoint.exercise.scenario_checker import (
    Checker,
    check_area,
    check_position,
    format_time,
    parse_time,
    require,
)
from rallypoint.exercise.tracks import TrackError, load_track

MAX_SPEED_MPS = 400.0
_MOTION_KEYS: dict[str, set[str]] = {
    "static": {"at"},
    "route": {"waypoints", "loop", "speed_mps"},
    "loiter": {"center", "radius_m", "speed_mps"},
    "random_walk": {"area", "speed_mps"},
    "track": {"file", "speed_mps", "loop"},
}


def check_motion(check: Checker, path: Path, table: dict[str, Any], base: FilePath) -> Motion | None:
    """One unit's ``motion`` table."""
    kind = require(check, table, path, "kind", str, f"one of: {', '.join(_MOTION_KEYS)}")
    if kind is None:
        return None
    if kind not in _MOTION_KEYS:
        check.fail((*path, "kind"), f"motion kind {kind!r} is not one of: {', '.join(_MOTION_KEYS)}")
        return None
    check.unknown_keys(table, path, _MOTION_KEYS[kind] | {"kind"})
    speed = check.number(table, path, "speed_mps", None, low=0.01, high=MAX_SPEED_MPS,
                         required=kind in ("loiter", "random_walk"))
    if kind == "static":
        at = check_position(check, (*path, "at"), table.get("at")) if "at" in table else None
        if "at" not in table:
            check.fail(path, "a static unit needs at = { lat = .., lon = .. }")
        return Static(at) if at is not None else None
    if kind == "loiter":
        center = check_position(check, (*path, "center"), table.get("center"))
        radius = check.number(table, path, "radius_m", None, low=1.0, high=100_000.0, required=True)
        return Loiter(center, radius, speed) if center and radius and speed else None
    if kind == "random_walk":
        area = check_area(check, (*path, "area"), table.get("area"))
        return RandomWalk(area, speed) if area is not None and speed else None
    loop = check.optional(table, path, "loop", bool, "true or false", False)
    if kind == "track":
        return _track(check, path, table, base, speed, loop)
    raw = require(check, table, path, "waypoints", list, "a list of { lat, lon, speed_mps } points")
    if raw is None:
        return None
    points = [_waypoint(check, (*path, "waypoints", i), w) for i, w in enumerate(raw)]
    if any(p is None for p in points):
        return None
    return _route(check, (*path, "waypoints"), [p for p in points if p is not None], speed, loop)


def _waypoint(check: Checker, path: Path, table: object) -> Waypoint | None:
    if not isinstance(table, dict):
        check.fail(path, "a waypoint must be { lat = .., lon = .., speed_mps = .. } or with at = \"mm:ss\"")
        return None
    check.unknown_keys(table, path, {"lat", "lon", "speed_mps", "at"})
    at = check_position(check, path, {k: table[k] for k in ("lat", "lon") if k in table})
    speed = check.number(table, path, "speed_mps", None, low=0.01, high=MAX_SPEED_MPS)
    time_s = parse_time(check, (*path, "at"), table["at"]) if "at" in table else None
    return Waypoint(at, speed, time_s) if at is not None else None


def _route(check: Checker, path: Path, points: list[Waypoint], speed: float | None, loop: bool) -> Route | None:
    if len(points) < 2:
        check.fail(path, f"a route needs at least two waypoints; this one has {len(points)}")
        return None
    timed = [p.time_s is not None for p in points]
    if any(timed) and not all(timed):
        check.fail(path, "give every waypoint an 'at' time, or none (and speeds instead)")
        return None
    if all(timed):
        for i in range(1, len(points)):
            before, now = points[i - 1].time_s, points[i].time_s
            assert before is not None and now is not None
            if now <= before:
                check.fail((*path, i), f"time travel: waypoint {i + 1} at {format_time(now)} is not after "
                                       f"waypoint {i} at {format_time(before)}")
                return None
        if loop:
            check.fail(path, "a timed route cannot loop")
            return None
        return Route(tuple(points))
    legs = points if loop else points[:-1]
    for i, p in enumerate(legs):
        if p.speed_mps is None and speed is None:
            check.fail((*path, i), f"waypoint {i + 1} needs speed_mps (or give the motion a speed_mps)")
            return None
    return Route(tuple(Waypoint(p.at, p.speed_mps or speed) for p in points), loop)


def _track(check: Checker, path: Path, table: dict[str, Any], base: FilePath, speed: float | None,
           loop: bool) -> Route | None:
    name = require(check, table, path, "file", str, "the path of a .gpx or .kml file")
    if name is None:
        return None
    try:
        points = load_track(base / name)
    except TrackError as exc:
        check.fail((*path, "file"), str(exc))
        return None
    timed = bool(points) and all(t is not None for _, t in points) and speed is None
    waypoints = [Waypoint(at, None if timed else speed, t if timed else None) for at, t in points]
    if not timed and speed is None:
        check.fail((*path, "file"), f"{name} has no times on every point: give the motion a speed_mps")
        return None
    return _route(check, (*path, "file"), waypoints, speed, loop and not timed)

