"""The checker of a scenario file, and checks of the values its parts share: times, positions, areas.

Every check records its problems on a :class:`Checker` (with the line of the offending key) and
carries on, so one run of the validator reports everything wrong with a file. Units' motions are
checked in ``scenario_motion``, injects and their triggers in ``scenario_injects``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

from rallypoint.exercise.lines import Path
from rallypoint.exercise.model import Area, Box, Circle, LatLon

T = TypeVar("T")
_TIME = re.compile(r"^(-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
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
