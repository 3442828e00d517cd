"""Checks for the parts of a scenario: times, positions, areas, motions and injects.

Every check records its problems on a :class:`Checker` (with the line of the offending key) and
carries on, so one run of the validator reports everything wrong with a file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Any, TypeVar

from rallypoint.exercise.lines import Path
from rallypoint.exercise.model import (
    API_KINDS,
    Area,
    Box,
    Circle,
    Enters,
    Inject,
    InjectKind,
    LatLon,
    LinkDegrade,
    Loiter,
    Motion,
    RandomWalk,
    Route,
    Static,
    TaskAcknowledged,
    Trigger,
    Waypoint,
)
from rallypoint.exercise.tracks import TrackError, load_track
from rallypoint.model.designation import Category

T = TypeVar("T")
_INJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TIME = re.compile(r"^(-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
MAX_SPEED_MPS = 400.0
_MOTION_KEYS: dict[str, set[str]] = {
    "static": {"at"},
    "route": {"waypoints", "loop", "speed_mps"},
    "loiter": {"center", "radius_m", "speed_mps"},
    "random_walk": {"area", "speed_mps"},
    "track": {"file", "speed_mps", "loop"},
}
_COMMON_INJECT_KEYS = {"id", "kind", "at", "trigger", "delay"}
_INJECT_KEYS: dict[InjectKind, set[str]] = {
    InjectKind.EMERGENCY: {"unit", "emergency_type"},
    InjectKind.EMERGENCY_CANCEL: {"unit"},
    InjectKind.CHAT: {"unit", "text", "to"},
    InjectKind.MARKER: {"unit", "lat", "lon", "marker_type", "title", "text"},
    InjectKind.DESIGNATION: {"unit", "lat", "lon", "title", "category", "text"},
    InjectKind.TASK: {"unit", "text", "lat", "lon", "to_unit", "to_callsign", "to_group"},
    InjectKind.FEED_START: {"unit", "feed", "url"},
    InjectKind.FEED_STOP: {"unit", "feed"},
    InjectKind.LINK: {"unit", "delay_s", "thin", "cut", "duration"},
    InjectKind.SILENT: {"unit", "duration"},
}
# Kinds acted out on a unit's own connection need that unit.
_NEEDS_UNIT = {InjectKind.EMERGENCY, InjectKind.EMERGENCY_CANCEL, InjectKind.CHAT, InjectKind.LINK,
               InjectKind.SILENT}
_MISSING = object()


class Checker:
    """Collects problems as (line, message); ``line`` maps a key path to its line."""

    def __init__(self, line: Callable[[Path], int]) -> None:
        self.line = line
        self.problems: list[tuple[int, str]] = []

    def fail(self, path: Path, message: str) -> None:
        """Record one problem at ``path``."""
        self.problems.append((self.line(path), message))

    def unknown_keys(self, table: dict[str, Any], path: Path, allowed: set[str]) -> None:
        """A problem for each key of ``table`` not in ``allowed``."""
        for key in table:
            if key not in allowed:
                where = _where(path)
                self.fail((*path, key), f"unknown key {key!r}{where}; expected one of: {', '.join(sorted(allowed))}")

    def optional(self, table: dict[str, Any], path: Path, key: str, kind: type[T] | tuple[type, ...], what: str,
                 default: T) -> T:
        """``table[key]`` when present and of ``kind`` (a problem otherwise), else ``default``."""
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not _is(value, kind):
            self.fail((*path, key), f"{key} must be {what} (got {value!r})")
            return default
        return value  # type: ignore[no-any-return]

    def number(self, table: dict[str, Any], path: Path, key: str, default: float | None, *, low: float,
               high: float, required: bool = False) -> float | None:
        """A finite number within [low, high]."""
        value = table.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.fail(path, f"missing {key}{_where(path)} (a number)")
            return default
        if not _is(value, (int, float)) or not math.isfinite(value):
            self.fail((*path, key), f"{key} must be a number (got {value!r})")
            return default
        if not low <= value <= high:
            self.fail((*path, key), f"{key} must be within {low:g}..{high:g} (got {value:g})")
            return default
        return float(value)


def _is(value: object, kind: type | tuple[type, ...]) -> bool:
    # TOML booleans are Python ints; never accept one where a number is expected.
    if isinstance(value, bool):
        return kind is bool or (isinstance(kind, tuple) and bool in kind)
    return isinstance(value, kind)


def _where(path: Path) -> str:
    named = [p for p in path if isinstance(p, str)]
    return f" in {'.'.join(named)}" if named else ""


def require(check: Checker, table: dict[str, Any], path: Path, key: str, kind: type[T] | tuple[type, ...],
            what: str) -> T | None:
    """``table[key]``, or None with a problem when it is missing or of the wrong kind."""
    if key not in table:
        check.fail(path, f"missing {key}{_where(path)} ({what})")
        return None
    value = table[key]
    if not _is(value, kind):
        check.fail((*path, key), f"{key} must be {what} (got {value!r})")
        return None
    return value  # type: ignore[no-any-return]


def parse_time(check: Checker, path: Path, value: object) -> float | None:
    """Seconds from ``"mm:ss"``, ``"hh:mm:ss"`` or a number of seconds (negative allowed; callers bound it)."""
    if _is(value, (int, float)):
        assert isinstance(value, int | float)
        if math.isfinite(value):
            return float(value)
    elif isinstance(value, str) and (match := _TIME.match(value.strip())):
        sign, hours, minutes, seconds = match.groups()
        if float(seconds) < 60 and (hours is None or int(minutes) < 60):
            total = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
            return -total if sign else total
    check.fail(path, f"{path[-1]} must be a time such as \"12:00\" (mm:ss), \"1:05:00\" or seconds (got {value!r})")
    return None


def format_time(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` past an hour), as scenario files write times."""
    sign = "-" if seconds < 0 else ""
    whole = round(abs(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{sign}{rest // 60:02d}:{rest % 60:02d}"


def check_position(check: Checker, path: Path, table: object) -> LatLon | None:
    """``{ lat = .., lon = .. }`` within range."""
    if not isinstance(table, dict):
        check.fail(path, f"{path[-1]} must be {{ lat = .., lon = .. }} (got {table!r})")
        return None
    check.unknown_keys(table, path, {"lat", "lon"})
    lat = check.number(table, path, "lat", None, low=-90, high=90, required=True)
    lon = check.number(table, path, "lon", None, low=-180, high=180, required=True)
    return LatLon(lat, lon) if lat is not None and lon is not None else None


def check_area(check: Checker, path: Path, table: object) -> Area | None:
    """A box ``{ south, west, north, east }`` or a circle ``{ lat, lon, radius_m }``."""
    if not isinstance(table, dict):
        check.fail(path, f"{path[-1]} must be {{ south, west, north, east }} or {{ lat, lon, radius_m }}")
        return None
    if "radius_m" in table:
        center = check_position(check, path, {k: v for k, v in table.items() if k != "radius_m"})
        radius = check.number(table, path, "radius_m", None, low=1.0, high=1_000_000.0, required=True)
        return Circle(center, radius) if center is not None and radius is not None else None
    check.unknown_keys(table, path, {"south", "west", "north", "east", "lat", "lon", "radius_m"})
    south = check.number(table, path, "south", None, low=-90, high=90, required=True)
    north = check.number(table, path, "north", None, low=-90, high=90, required=True)
    west = check.number(table, path, "west", None, low=-180, high=180, required=True)
    east = check.number(table, path, "east", None, low=-180, high=180, required=True)
    if south is None or north is None or west is None or east is None:
        return None
    if south >= north or west >= east:
        check.fail(path, "an area needs south below north and west below east")
        return None
    return Box(south, west, north, east)


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


def check_inject(check: Checker, path: Path, table: dict[str, Any], units: set[str],
                 duration: float | None) -> Inject | None:
    """One ``[[injects]]`` table."""
    inject_id = require(check, table, path, "id", str, "text")
    if inject_id is not None and not _INJECT_ID.match(inject_id):
        check.fail((*path, "id"), f"inject id {inject_id!r} must be 1-64 letters, digits, '-' or '_'")
    kind_name = require(check, table, path, "kind", str, "an inject kind")
    kinds = ", ".join(k.value for k in InjectKind)
    if kind_name is None:
        return None
    try:
        kind = InjectKind(kind_name)
    except ValueError:
        check.fail((*path, "kind"), f"inject kind {kind_name!r} is not one of: {kinds}")
        return None
    check.unknown_keys(table, path, _COMMON_INJECT_KEYS | _INJECT_KEYS[kind])
    at_s = _inject_time(check, path, table, duration)
    trigger = _trigger(check, (*path, "trigger"), table["trigger"], units) if "trigger" in table else None
    if "at" in table and "trigger" in table:
        check.fail((*path, "trigger"), "give an inject 'at' or 'trigger', not both")
    delay = parse_time(check, (*path, "delay"), table["delay"]) if "delay" in table else 0.0
    if delay is not None and delay < 0:
        check.fail((*path, "delay"), "time travel: a delay cannot be negative")
    unit = check.optional(table, path, "unit", str, "a unit id", None)
    if unit is not None and unit not in units:
        check.fail((*path, "unit"), f"inject {inject_id!r} names unit {unit!r}, which is not in [[units]]")
    elif unit is None and kind in _NEEDS_UNIT:
        check.fail(path, f"a {kind.value} inject needs unit = \"<unit id>\"")
    details = _inject_details(check, path, table, kind, units)
    if inject_id is None or details is None:
        return None
    return Inject(id=inject_id, kind=kind, at_s=at_s, trigger=trigger, delay_s=delay or 0.0, unit=unit, **details)


def _inject_time(check: Checker, path: Path, table: dict[str, Any], duration: float | None) -> float | None:
    if "at" not in table:
        return None
    at = parse_time(check, (*path, "at"), table["at"])
    if at is None:
        return None
    if at < 0:
        check.fail((*path, "at"), f"time travel: at {format_time(at)} is before the exercise starts (00:00)")
    elif duration is not None and at > duration:
        check.fail((*path, "at"), f"time travel: at {format_time(at)} is after the exercise ends "
                                  f"({format_time(duration)})")
    return at


def _trigger(check: Checker, path: Path, table: object, units: set[str]) -> Trigger | None:
    if not isinstance(table, dict):
        check.fail(path, "trigger must be { kind = \"enters\", unit, area } "
                         "or { kind = \"task_acknowledged\", inject }")
        return None
    kind = require(check, table, path, "kind", str, "enters or task_acknowledged")
    if kind == "enters":
        check.unknown_keys(table, path, {"kind", "unit", "area"})
        unit = require(check, table, path, "unit", str, "a unit id")
        if unit is not None and unit not in units:
            check.fail((*path, "unit"), f"trigger names unit {unit!r}, which is not in [[units]]")
            unit = None
        area = check_area(check, (*path, "area"), table.get("area"))
        return Enters(unit, area) if unit is not None and area is not None else None
    if kind == "task_acknowledged":
        check.unknown_keys(table, path, {"kind", "inject"})
        inject = require(check, table, path, "inject", str, "the id of a task inject")
        return TaskAcknowledged(inject) if inject is not None else None
    if kind is not None:
        check.fail((*path, "kind"), f"trigger kind {kind!r} is not one of: enters, task_acknowledged")
    return None


def _inject_details(check: Checker, path: Path, table: dict[str, Any], kind: InjectKind,
                    units: set[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    text = check.optional(table, path, "text", str, "text", "")
    if kind is InjectKind.CHAT:
        out["text"] = require(check, table, path, "text", str, "the message")
        out["to"] = check.optional(table, path, "to", str, "a callsign", None)
    elif kind in (InjectKind.EMERGENCY,):
        out["emergency_type"] = check.optional(table, path, "emergency_type", str, "an alert type", "911 Alert")
    elif kind in (InjectKind.MARKER, InjectKind.DESIGNATION):
        out["position"] = check_position(check, path, {k: table[k] for k in ("lat", "lon") if k in table})
        out["title"] = check.optional(table, path, "title", str, "text", kind.value)
        out["text"] = text
        out["marker_type"] = check.optional(table, path, "marker_type", str, "a CoT type", "a-u-G")
        categories = ", ".join(c.value for c in Category)
        out["category"] = check.optional(table, path, "category", str, f"one of: {categories}", "other")
        if out["category"] not in {c.value for c in Category}:
            check.fail((*path, "category"), f"category {out['category']!r} is not one of: {categories}")
    elif kind is InjectKind.TASK:
        out["text"] = require(check, table, path, "text", str, "what to do")
        if "lat" in table or "lon" in table:
            out["position"] = check_position(check, path, {k: table[k] for k in ("lat", "lon") if k in table})
        out["assignee"] = _assignee(check, path, table, units)
    elif kind in (InjectKind.FEED_START, InjectKind.FEED_STOP):
        out["feed"] = require(check, table, path, "feed", str, "the feed's name")
        if kind is InjectKind.FEED_START:
            out["url"] = require(check, table, path, "url", str, "the feed URL, e.g. sbs+tcp://host:30003")
    elif kind is InjectKind.LINK:
        out["link"] = _link(check, path, table)
    elif kind is InjectKind.SILENT and "duration" in table:
        out["duration_s"] = _positive_time(check, path, table, "duration")
    if any(v is None for k, v in out.items() if k not in ("to",)) and kind in API_KINDS | {InjectKind.CHAT}:
        return None
    return out


def _assignee(check: Checker, path: Path, table: dict[str, Any], units: set[str]) -> dict[str, str] | None:
    given = {k: table[k] for k in ("to_unit", "to_callsign", "to_group") if k in table}
    if len(given) != 1 or not all(isinstance(v, str) and v for v in given.values()):
        check.fail(path, "a task needs exactly one of to_unit, to_callsign, to_group (text)")
        return None
    key, value = next(iter(given.items()))
    if key == "to_unit" and value not in units:
        check.fail((*path, key), f"task assigned to unit {value!r}, which is not in [[units]]")
        return None
    return {key.removeprefix("to_"): value}


def _link(check: Checker, path: Path, table: dict[str, Any]) -> LinkDegrade | None:
    delay = check.number(table, path, "delay_s", 0.0, low=0.0, high=3600.0)
    thin = check.optional(table, path, "thin", int, "a whole number (keep 1 of N reports)", 1)
    if thin < 1:
        check.fail((*path, "thin"), "thin must be at least 1 (1 keeps every report)")
    cut = _positive_time(check, path, table, "cut") if "cut" in table else 0.0
    duration = _positive_time(check, path, table, "duration") if "duration" in table else None
    if delay == 0 and thin == 1 and not cut:
        check.fail(path, "a link inject needs delay_s, thin or cut")
    if delay is None or cut is None:
        return None
    return LinkDegrade(delay_s=delay, thin=max(thin, 1), cut_s=cut, duration_s=duration)


def _positive_time(check: Checker, path: Path, table: dict[str, Any], key: str) -> float | None:
    value = parse_time(check, (*path, key), table[key])
    if value is not None and value <= 0:
        check.fail((*path, key), f"time travel: {key} must be positive (got {format_time(value)})")
        return None
    return value
