"""Fold a window of stored history and audit entries into a :class:`Report`, one row at a time.

Rows must arrive oldest first (as ``services.replay.window_rows`` yields them); nothing keeps the
rows themselves, only per-unit counters, report times and a thinned track, so a window of millions of
events is read in bounded memory apart from eight bytes per position report.
"""

# mypy: disallow-untyped-defs, disallow-any-generics, warn-return-any

from __future__ import annotations

import msgspec

from rallypoint.aar.links import LinkAccumulator
from rallypoint.aar.marks import (
    DESIGNATION_TAG,
    MARKER_TYPE,
    TASK_STATUS_TYPE,
    TASK_TYPE,
    ExerciseMark,
    designation_state,
    exercise_mark,
    link_uid,
    task_assignee,
    task_state,
)
from rallypoint.aar.model import NO_TEAM, Inject, Report, Response, TeamSummary, TimelineEntry
from rallypoint.aar.responses import (
    DESIGNATION_ANSWERS,
    TASK_ANSWERS,
    Evidence,
    Seen,
    created_at,
    emergency_answer,
    first_answer,
    pair,
)
from rallypoint.aar.scope import in_scope
from rallypoint.model.cot_type import EMERGENCY_CANCEL, is_emergency
from rallypoint.model.fix import has_fix
from rallypoint.storage.base import StoredEvent

MAX_TIMELINE = 5000
DEFAULT_LATE_MS = 2000
EMERGENCY_SUFFIX = "-9-1-1"
# ``how`` of map items placed by hand (markers, designations): an a- type, but no unit reporting.
PLACED = "h-g-i-g-o"
# Only an inject's marker has this attribute: the rows worth reading the marker of.
_INJECT = b" inject="


class _InjectSeen(msgspec.Struct):
    exercise: str
    id: str
    kind: str
    unit: str
    at_ms: int
    uid: str
    type: str
    ref: str
    emergency_uid: str
    where: tuple[float, float] | None


class ReportBuilder:
    """Accumulates one report; ``add_row`` for each row in time order, ``add_audit`` for each entry, then ``finish``."""

    def __init__(self, *, since_ms: int, until_ms: int, exercise: str | None = None,
                 late_ms: int = DEFAULT_LATE_MS) -> None:
        self.since_ms, self.until_ms, self.exercise, self.late_ms = since_ms, until_ms, exercise, late_ms
        self.rows_read = self.rows_kept = self.rows_other = 0
        self.exercises: set[str] = set()
        self.links: dict[str, LinkAccumulator] = {}
        self.injects: dict[tuple[str, str], _InjectSeen] = {}
        self.evidence = Evidence()
        self.timeline: list[TimelineEntry] = []
        self.timeline_cut = 0
        self.bbox: list[float] | None = None
        # emergency uid -> (raised by uid, at) for each raise that was not already active.
        self.raises: list[tuple[str, str]] = []
        self.active_alerts: set[str] = set()
        self.task_assignees: dict[str, str] = {}

    def add_row(self, row: StoredEvent) -> None:
        """One stored event of the window."""
        self.rows_read += 1
        xml = row.xml
        exercise = row.exercise
        if exercise is not None:
            self.exercises.add(exercise)
        if not in_scope(exercise, self.exercise):
            self.rows_other += 1
            return
        self.rows_kept += 1
        typ = row.type
        mark = None
        if exercise is not None and (_INJECT in xml or typ[:2] != "a-" or row.uid not in self.links):
            # The marker's unit, inject and kind, read from the XML: for injects, and once per
            # reporting unit (its unit id); a unit's later reports need only the stored columns.
            mark = exercise_mark(xml) or ExerciseMark(exercise)
            if mark.inject:
                self._inject(row, mark.exercise, mark.inject, mark.kind, mark.unit, mark.ref)
        # A marker an inject placed (an a- type, sent m-s like all simulated traffic) reports no unit.
        if typ[:2] == "a-" and row.how != PLACED and not (mark is not None and mark.inject):
            lon, lat = row.lon, row.lat
            if has_fix(lat, lon):
                self._position(row, lon, lat, mark.unit if mark is not None else "", exercise is not None)
        elif typ == MARKER_TYPE:
            return
        elif is_emergency(typ) or typ == EMERGENCY_CANCEL:
            self._emergency(row, scripted=mark is not None and bool(mark.inject), simulated=exercise is not None)
        elif typ in (TASK_TYPE, TASK_STATUS_TYPE):
            self._task(row)
        elif DESIGNATION_TAG in xml and (found := designation_state(xml)) is not None:
            who = row.callsign or row.sender or ""
            self.evidence.designation(found[0], found[1], Seen(row.time, who, f"CoT {typ} state={found[1]}"))

    def _position(self, row: StoredEvent, lon: float, lat: float, unit: str, simulated: bool) -> None:
        link = self.links.get(row.uid)
        if link is None:
            link = self.links[row.uid] = LinkAccumulator(row.uid)
            link.unit = unit
            link.simulated = simulated
        if row.callsign:
            link.callsign = row.callsign
        if row.team:
            link.team = row.team
        link.add(row.time, row.received, lon, lat, self.late_ms)
        box = self.bbox
        if box is None:
            self.bbox = [lon, lat, lon, lat]
        else:
            if lon < box[0]:
                box[0] = lon
            elif lon > box[2]:
                box[2] = lon
            if lat < box[1]:
                box[1] = lat
            elif lat > box[3]:
                box[3] = lat

    def _inject(self, row: StoredEvent, exercise: str, inject: str, kind: str, unit: str, ref: str) -> None:
        key = (exercise, inject)
        seen = self.injects.get(key)
        alert = row.uid if is_emergency(row.type) else ""
        if seen is None:
            where = (row.lon, row.lat) if has_fix(row.lat, row.lon) else None
            self.injects[key] = _InjectSeen(exercise, inject, kind, unit, row.time, row.uid, row.type, ref, alert,
                                            where)
            return
        seen.ref = seen.ref or ref
        seen.emergency_uid = seen.emergency_uid or alert
        if row.time < seen.at_ms:
            seen.at_ms = row.time

    def _emergency(self, row: StoredEvent, *, scripted: bool, simulated: bool) -> None:
        uid = row.uid
        cancel = row.type == EMERGENCY_CANCEL or b'cancel="true"' in row.xml
        who = row.callsign or row.sender or ""
        if cancel:
            self.active_alerts.discard(uid)
            if not scripted:
                self.evidence.emergency(uid, Response("emergency cancelled", row.time, who, f"CoT {row.type}"))
            self._note(row.time, "emergency cancelled", f"{uid} by {who}".strip(), simulated)
            return
        if uid in self.active_alerts:
            return  # a repeat of an alert already raised
        self.active_alerts.add(uid)
        sender = link_uid(row.xml) or (uid[: -len(EMERGENCY_SUFFIX)] if uid.endswith(EMERGENCY_SUFFIX) else uid)
        self.raises.append((uid, sender))
        self._note(row.time, f"emergency raised ({row.type})", f"{uid} {who}".strip(), simulated)

    def _task(self, row: StoredEvent) -> None:
        found = task_state(row.xml)
        if found is None:
            return
        task_id, state = found
        if row.type == TASK_TYPE and task_id not in self.task_assignees:
            self.task_assignees[task_id] = task_assignee(row.xml)
        who = row.callsign or row.sender or ""
        self.evidence.task(task_id, state, Seen(row.time, who, f"CoT {row.type} state={state}"))

    def add_audit(self, ts_ms: int, actor: str, action: str, target: str) -> None:
        """One audit entry; those outside the window are ignored."""
        if not self.since_ms <= ts_ms < self.until_ms:
            return
        if action == "emergency.ack":
            self.evidence.emergency(target, Response("emergency acknowledged", ts_ms, actor, "audit emergency.ack"))
        elif action in ("designation.approve", "designation.reject", "designation.propose"):
            state = {"designation.approve": "approved", "designation.reject": "rejected"}.get(action, "proposed")
            self.evidence.designation(target, state, Seen(ts_ms, actor, f"audit {action}"))
        elif action.startswith("exercise."):
            self._note(ts_ms, action, f"{target} by {actor}", True)

    def _note(self, at_ms: int, what: str, detail: str, simulated: bool) -> None:
        if len(self.timeline) >= MAX_TIMELINE:
            self.timeline_cut += 1
            return
        self.timeline.append(TimelineEntry(at_ms, what, detail, simulated))

    def finish(self) -> Report:
        """The report of everything added."""
        injects = self._matched_injects()
        entries = list(self.timeline)
        for inj in injects:
            entries.append(TimelineEntry(inj.at_ms, f"inject {inj.id} ({inj.kind or inj.type})",
                                         " ".join(x for x in (inj.unit, inj.target) if x), True))
            if inj.response is not None:
                r = inj.response
                entries.append(TimelineEntry(r.at_ms, f"response to {inj.id}: {r.what}",
                                             f"by {r.by} after {(r.at_ms - inj.at_ms) / 1000:.1f} s", False))
        entries.sort(key=lambda e: (e.at_ms, e.what))
        links = sorted((acc.stats() for acc in self.links.values()), key=lambda s: (s.team, s.callsign, s.uid))
        tracks = tuple(acc.track() for acc in sorted(self.links.values(), key=lambda a: a.uid))
        return Report(
            since_ms=self.since_ms, until_ms=self.until_ms, exercise=self.exercise, late_ms=self.late_ms,
            rows_read=self.rows_read, rows_kept=self.rows_kept, rows_other_exercises=self.rows_other,
            exercises_seen=tuple(sorted(self.exercises)), injects=tuple(injects), timeline=tuple(entries),
            timeline_cut=self.timeline_cut, links=tuple(links), teams=self._teams(),
            tracks=tracks, bbox=None if self.bbox is None else (self.bbox[0], self.bbox[1], self.bbox[2], self.bbox[3]),
        )

    def _matched_injects(self) -> list[Inject]:
        ev = self.evidence
        claimed_tasks: set[str] = set()
        claimed_designations: set[str] = set()
        out: list[Inject] = []
        for seen in sorted(self.injects.values(), key=lambda s: (s.at_ms, s.exercise, s.id)):
            kind = seen.kind.lower()
            at, target, awaits, response = seen.at_ms, "", "", None
            if seen.emergency_uid:
                target, awaits = seen.emergency_uid, "emergency"
                response = emergency_answer(ev, target, at)
            elif seen.ref in ev.tasks or (not seen.ref and "task" in kind):
                target = seen.ref or pair(at, ev.tasks, "assigned", claimed_tasks)
                awaits = "task"
            elif seen.ref in ev.designations or (not seen.ref and "designation" in kind):
                target = seen.ref or pair(at, ev.designations, "proposed", claimed_designations)
                awaits = "designation"
            if awaits == "task" and target:
                claimed_tasks.add(target)
                at = created_at(ev.tasks[target], "assigned") or at
                response = first_answer(ev.tasks[target], TASK_ANSWERS, "task")
            elif awaits == "designation" and target:
                claimed_designations.add(target)
                at = created_at(ev.designations[target], "proposed") or at
                response = first_answer(ev.designations[target], DESIGNATION_ANSWERS, "designation")
            out.append(Inject(seen.exercise, seen.id, seen.kind, seen.unit, at, seen.uid, seen.type, seen.where,
                              target, awaits, response, None if response is None else response.at_ms - at))
        return out

    def _teams(self) -> tuple[TeamSummary, ...]:
        team_of: dict[str, str] = {}
        for link in self.links.values():
            team_of[link.uid] = link.team
            if link.callsign:
                team_of.setdefault(link.callsign, link.team)
        rows: dict[str, dict[str, float]] = {}

        def row(team: str) -> dict[str, float]:
            return rows.setdefault(team, dict.fromkeys(
                ("simulated_units", "live_units", "distance_m", "reports", "emergencies", "tasks"), 0.0))

        for link in self.links.values():
            r = row(link.team)
            r["simulated_units" if link.simulated else "live_units"] += 1
            r["distance_m"] += link.distance_m
            r["reports"] += link.delivered
        for _alert, sender in self.raises:
            row(team_of.get(sender, NO_TEAM))["emergencies"] += 1
        for assignee in self.task_assignees.values():
            team = team_of.get(assignee) or (assignee if assignee in rows else NO_TEAM)
            row(team)["tasks"] += 1
        return tuple(
            TeamSummary(team, int(r["simulated_units"]), int(r["live_units"]), r["distance_m"], int(r["reports"]),
                        int(r["emergencies"]), int(r["tasks"]))
            for team, r in sorted(rows.items())
        )
