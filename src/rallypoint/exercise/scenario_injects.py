"""Checks of an ``[[injects]]`` table: its kind's keys, its time or trigger, and what it carries."""

from __future__ import annotations

import re
from typing import Any

from rallypoint.exercise.lines import Path
from rallypoint.exercise.model import (
    API_KINDS,
    Enters,
    Inject,
    InjectKind,
    LinkDegrade,
    TaskAcknowledged,
    Trigger,
)
from rallypoint.exercise.scenario_checker import (
    Checker,
    check_area,
    check_position,
    format_time,
    parse_time,
    require,
)
from rallypoint.model.designation import Category

_INJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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
