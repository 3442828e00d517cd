"""Scenario files: TOML read with ``tomllib``, checked once, every problem reported with its line.

:func:`load_scenario` returns a :class:`~rallypoint.exercise.model.Scenario` or raises
:class:`ScenarioInvalid` listing every problem found (``FILE:LINE: what is wrong``), not just the
first. The schema is in docs/exercises.md ("Scenario files").
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any

from rallypoint.errors import RallypointError
from rallypoint.exercise.lines import Path, index_lines, line_of
from rallypoint.exercise.model import Inject, InjectKind, Scenario, TaskAcknowledged, Unit
from rallypoint.exercise.scenario_checker import Checker, parse_time, require
from rallypoint.exercise.scenario_injects import check_inject
from rallypoint.exercise.scenario_motion import check_motion

# One runner process holds one connection per unit; the benchmark drives 2,000 at 1 Hz from one
# process, and past 20,000 a single process runs out of descriptors and CPU long before the server
# does: split a larger exercise across several runners (one scenario each).
MAX_UNITS = 20_000
MAX_INJECTS = 10_000
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_FILE_BYTES = 8 * 1024 * 1024
EXERCISE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_UNIT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_COT_TYPE = re.compile(r"^[a-z](-[A-Za-z0-9]+)*$")
_TOP_KEYS = {"exercise", "units", "injects", "missions"}
_EXERCISE_KEYS = {"id", "name", "seed", "duration"}
_UNIT_KEYS = {"id", "callsign", "team", "role", "type", "rate_s", "motion", "count", "spacing_s"}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a scenario, and where."""

    line: int
    message: str


class ScenarioInvalid(RallypointError):
    """The scenario cannot run; ``problems`` says why, line by line."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(f"{source}:{p.line}: {p.message}" for p in self.problems))


def load_scenario(path: FilePath, *, exercise_id: str | None = None) -> Scenario:
    """Read and check the scenario at ``path``; track files are found relative to its folder."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioInvalid(str(path), [Problem(1, f"cannot read the file: {exc.strerror or exc}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioInvalid(str(path), [Problem(1, f"the file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")])
    return parse_scenario(data.decode("utf-8", errors="replace"), source=str(path), base=path.parent,
                          exercise_id=exercise_id)


def parse_scenario(text: str, *, source: str = "<scenario>", base: FilePath | None = None,
                   exercise_id: str | None = None) -> Scenario:
    """Check scenario ``text``; ``exercise_id`` replaces the file's ``exercise.id``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else 1
        raise ScenarioInvalid(source, [Problem(line, f"not valid TOML: {exc}")]) from None
    lines = index_lines(text)
    check = Checker(lambda path: line_of(lines, path))
    scenario = _scenario(doc, check, base or FilePath("."), exercise_id)
    if check.problems or scenario is None:
        raise ScenarioInvalid(source, [Problem(line, message) for line, message in check.problems])
    return scenario


def _scenario(doc: dict[str, Any], check: Checker, base: FilePath, exercise_id: str | None) -> Scenario | None:
    check.unknown_keys(doc, (), _TOP_KEYS)
    head = require(check, doc, (), "exercise", dict, "a table [exercise]")
    if head is None:
        return None
    check.unknown_keys(head, ("exercise",), _EXERCISE_KEYS)
    ex_id = exercise_id if exercise_id is not None else require(check, head, ("exercise",), "id", str, "text")
    if ex_id is not None and (not EXERCISE_ID.match(ex_id) or ex_id in ("any", "none")):
        # "any" and "none" are the history filters' own words (docs/exercises.md).
        check.fail(("exercise", "id"), f"exercise id {ex_id!r} must be 1-64 letters, digits, '-' or '_' "
                                       "(and not 'any' or 'none')")
    name = check.optional(head, ("exercise",), "name", str, "text", "")
    seed = check.optional(head, ("exercise",), "seed", int, "a whole number", 0)
    duration_raw = require(check, head, ("exercise",), "duration", (str, int, float), "a time such as \"30:00\"")
    duration = parse_time(check, ("exercise", "duration"), duration_raw) if duration_raw is not None else None
    if duration is not None and not 0 < duration <= MAX_DURATION_S:
        check.fail(("exercise", "duration"), f"duration must be above 0 and at most {MAX_DURATION_S:.0f} s")
        duration = None
    missions = _missions(doc, check)
    units = _units(doc, check, base, duration)
    # Units declared with a mistake still exist for the injects naming them (one problem, not two).
    unit_ids = {u.id for u in units} | declared_unit_ids(doc)
    injects = _injects(doc, check, unit_ids, duration)
    if ex_id is None or duration is None or name is None or seed is None:
        return None
    return Scenario(id=ex_id, name=name or ex_id, seed=seed, duration_s=duration, units=tuple(units),
                    injects=tuple(injects), missions=missions)


def _missions(doc: dict[str, Any], check: Checker) -> tuple[str, ...]:
    table = check.optional(doc, (), "missions", dict, "a table [missions]", {})
    if not table:
        return ()
    check.unknown_keys(table, ("missions",), {"allow"})
    allow = check.optional(table, ("missions",), "allow", list, "a list of mission names", [])
    names = []
    for i, name in enumerate(allow or []):
        if not isinstance(name, str) or not name:
            check.fail(("missions", "allow", i), "a mission name must be non-empty text")
        else:
            names.append(name)
    return tuple(names)


def _units(doc: dict[str, Any], check: Checker, base: FilePath, duration: float | None) -> list[Unit]:
    raw = check.optional(doc, (), "units", list, "an array of [[units]] tables", [])
    if not raw:
        check.fail(("units",), "the scenario has no [[units]]")
        return []
    counts = [_count(table) for table in raw]
    if sum(counts) > MAX_UNITS:
        # Say so once, at the biggest group, before building millions of units.
        biggest = max(range(len(counts)), key=counts.__getitem__)
        check.fail(("units", biggest, "count"), f"{sum(counts)} units: one runner drives at most {MAX_UNITS}; "
                                                "split the exercise into several scenarios, one runner each")
        return []
    units: list[Unit] = []
    seen: dict[str, Path] = {}
    callsigns: dict[str, Path] = {}
    for i, table in enumerate(raw):
        path: Path = ("units", i)
        if not isinstance(table, dict):
            check.fail(path, "each unit must be a [[units]] table")
            continue
        for unit in _unit(table, path, check, base, duration):
            for key, index, value in (("id", seen, unit.id), ("callsign", callsigns, unit.callsign)):
                if value in index:
                    also = check.line(index[value])
                    check.fail((*path, key), f"unit {key} {value!r} is used twice (also line {also})")
                index[value] = path
            units.append(unit)
    return units


def _count(table: object) -> int:
    count = table.get("count", 1) if isinstance(table, dict) else 1
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def declared_unit_ids(doc: dict[str, Any]) -> set[str]:
    """Every unit id the document declares (``id-1`` .. ``id-N`` for a group of ``count`` N)."""
    ids: set[str] = set()
    raw = doc.get("units")
    for table in raw if isinstance(raw, list) and sum(_count(t) for t in raw) <= MAX_UNITS else []:
        uid = table.get("id") if isinstance(table, dict) else None
        if isinstance(uid, str):
            count = _count(table)
            ids.update([uid] if count == 1 else (f"{uid}-{n}" for n in range(1, count + 1)))
    return ids


def _unit(table: dict[str, Any], path: Path, check: Checker, base: FilePath, duration: float | None) -> list[Unit]:
    check.unknown_keys(table, path, _UNIT_KEYS)
    uid = require(check, table, path, "id", str, "text")
    if uid is not None and not _UNIT_ID.match(uid):
        check.fail((*path, "id"), f"unit id {uid!r} must be 1-64 letters, digits, '.', '-' or '_'")
        uid = None
    callsign = check.optional(table, path, "callsign", str, "text", uid or "")
    team = check.optional(table, path, "team", str, "text", "Cyan")
    role = check.optional(table, path, "role", str, "text", "Team Member")
    cot_type = check.optional(table, path, "type", str, "a CoT type", "a-f-G-U-C")
    if cot_type is not None and not _COT_TYPE.match(cot_type):
        check.fail((*path, "type"), f"type {cot_type!r} is not a CoT type such as a-f-G-U-C")
    rate = check.number(table, path, "rate_s", 5.0, low=0.1, high=3600.0)
    count = check.optional(table, path, "count", int, "a whole number", 1)
    if count < 1:
        check.fail((*path, "count"), "count must be at least 1")
        count = 1
    spacing = check.number(table, path, "spacing_s", 0.0, low=0.0, high=MAX_DURATION_S)
    motion_raw = require(check, table, path, "motion", dict, "an inline table such as { kind = \"static\", ... }")
    motion = check_motion(check, (*path, "motion"), motion_raw, base) if motion_raw is not None else None
    if uid is None or rate is None or motion is None:
        return []
    if count == 1:
        return [Unit(uid, callsign, team, role, cot_type, rate, motion)]
    return [Unit(f"{uid}-{n}", f"{callsign}-{n}", team, role, cot_type, rate, motion, offset_s=(n - 1) * (spacing or 0))
            for n in range(1, count + 1)]


def _injects(doc: dict[str, Any], check: Checker, units: set[str], duration: float | None) -> list[Inject]:
    raw = check.optional(doc, (), "injects", list, "an array of [[injects]] tables", [])
    if raw is None:
        return []
    if len(raw) > MAX_INJECTS:
        check.fail(("injects",), f"{len(raw)} injects; the limit is {MAX_INJECTS}")
        return []
    injects = []
    seen: dict[str, Path] = {}
    for i, table in enumerate(raw):
        path: Path = ("injects", i)
        if not isinstance(table, dict):
            check.fail(path, "each inject must be an [[injects]] table")
            continue
        inject = check_inject(check, path, table, units, duration)
        if inject is None:
            continue
        if inject.id in seen:
            also = check.line(seen[inject.id])
            check.fail((*path, "id"), f"inject id {inject.id!r} is used twice (also line {also})")
        seen[inject.id] = path
        injects.append(inject)
    by_id = {inject.id: inject for inject in injects}
    for inject in injects:
        _check_reference(check, inject, by_id, seen[inject.id])
    return injects


def _check_reference(check: Checker, inject: Inject, by_id: dict[str, Inject], path: Path) -> None:
    trigger = inject.trigger
    if isinstance(trigger, TaskAcknowledged):
        target = by_id.get(trigger.inject)
        if target is None:
            check.fail((*path, "trigger", "inject"), f"trigger names inject {trigger.inject!r}, which does not exist")
        elif target.kind is not InjectKind.TASK:
            check.fail((*path, "trigger", "inject"), f"inject {trigger.inject!r} assigns no task (kind task)")
        elif target.id == inject.id:
            check.fail((*path, "trigger", "inject"), "an inject cannot wait for itself")

