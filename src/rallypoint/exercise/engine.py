"""The simulation engine: which reports and injects fall due by a given exercise second.

Pure and deterministic (no I/O, no clock reads, no asyncio): the runner asks :meth:`Engine.advance`
for everything due up to the exercise clock's reading, sends it, and sleeps until
:meth:`Engine.next_due`. Links and silences are applied here, so what reaches the wire is exactly
what the script says: a cut link loses reports, a thinned one keeps 1 of N, a delayed one releases
each report ``delay_s`` after its position was taken, a silent unit sends nothing.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from rallypoint.exercise.model import Enters, Inject, InjectKind, LinkDegrade, Scenario, TaskAcknowledged, Unit
from rallypoint.exercise.motion import Fix, Mover, make_mover


class EngineError(ValueError):
    """A live request the engine cannot honour (unknown inject, already done)."""


@dataclass(frozen=True, slots=True)
class Report:
    """A position report: taken at ``fix_s``, to be sent at ``due_s`` (later when the link delays it)."""

    unit: Unit
    seq: int
    fix_s: float
    due_s: float
    fix: Fix


@dataclass(frozen=True, slots=True)
class InjectDue:
    """An inject to carry out at ``due_s``; ``cause`` is ``time``, ``trigger`` or ``manual``."""

    inject: Inject
    due_s: float
    cause: str


Action = Report | InjectDue


@dataclass(slots=True)
class LinkCounts:
    """What happened to one unit's reports (the runner adds what it actually sent)."""

    scheduled: int = 0
    released: int = 0
    delayed: int = 0
    thinned: int = 0
    cut: int = 0
    silenced: int = 0


@dataclass(slots=True)
class _Degrade:
    start_s: float
    end_s: float
    link: LinkDegrade
    seen: int = 0


@dataclass(slots=True)
class _UnitState:
    unit: Unit
    mover: Mover
    counts: LinkCounts = field(default_factory=LinkCounts)
    degrades: list[_Degrade] = field(default_factory=list)
    silences: list[tuple[float, float]] = field(default_factory=list)
    seq: int = 0


class Engine:
    """Reports and injects of one scenario over exercise time."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._units = {u.id: _UnitState(u, make_mover(u, scenario.seed)) for u in scenario.units}
        n = max(len(scenario.units), 1)
        # First reports spread over each unit's period, so 2,000 units at 1 Hz do not all send at once.
        self._next: list[tuple[float, int, str]] = [
            (u.rate_s * i / n, i, u.id) for i, u in enumerate(scenario.units)
        ]
        heapq.heapify(self._next)
        self._late: list[tuple[float, int, Report]] = []
        self._late_seq = 0
        self._timed = sorted((i for i in scenario.injects if i.at_s is not None), key=lambda i: (i.at_s, i.id))
        self._triggered: list[tuple[float, int, InjectDue]] = []
        self._watch_area = [i for i in scenario.injects if isinstance(i.trigger, Enters)]
        self._injects = {i.id: i for i in scenario.injects}
        self.done: dict[str, float] = {}

    # -- queries ------------------------------------------------------------------------------

    def counts(self) -> dict[str, LinkCounts]:
        """Per unit id, what happened to its reports so far."""
        return {uid: s.counts for uid, s in self._units.items()}

    def position(self, unit_id: str, t_s: float) -> Fix:
        """Where ``unit_id`` is at ``t_s`` (whether or not it reports)."""
        return self._units[unit_id].mover.at(t_s)

    def next_due(self) -> float | None:
        """The earliest exercise second at which something falls due (None: nothing left)."""
        candidates = [q[0][0] for q in (self._late, self._triggered) if q]
        if self._next and self._next[0][0] < self.scenario.duration_s:
            candidates.append(self._next[0][0])
        if self._timed:
            candidates.append(self._timed[0].at_s or 0.0)
        return min(candidates) if candidates else None

    def finished(self) -> bool:
        """Nothing left to send (timed injects and delayed reports included)."""
        return self.next_due() is None

    # -- time passes --------------------------------------------------------------------------

    def advance(self, now_s: float) -> list[Action]:
        """Everything due at or before ``now_s``, in time order."""
        out: list[Action] = []
        while self._timed and (self._timed[0].at_s or 0.0) <= now_s:
            inject = self._timed.pop(0)
            out.append(self._fire(inject, inject.at_s or 0.0, "time"))
        horizon = min(now_s, self.scenario.duration_s)
        while self._next and self._next[0][0] <= horizon and self._next[0][0] < self.scenario.duration_s:
            fix_s, order, uid = heapq.heappop(self._next)
            state = self._units[uid]
            heapq.heappush(self._next, (fix_s + state.unit.rate_s, order, uid))
            self._report(state, fix_s, out)
        while self._late and self._late[0][0] <= now_s:
            out.append(heapq.heappop(self._late)[2])
        while self._triggered and self._triggered[0][0] <= now_s:
            due = heapq.heappop(self._triggered)[2]
            if due.inject.id not in self.done:
                out.append(self._fire(due.inject, due.due_s, due.cause))
        out.sort(key=lambda a: a.due_s)
        return out

    def inject_now(self, inject_id: str, now_s: float) -> InjectDue:
        """Carry out ``inject_id`` at once (live control); it will not run again on its own."""
        inject = self._injects.get(inject_id)
        if inject is None:
            raise EngineError(f"no inject {inject_id!r} in this scenario")
        if inject_id in self.done:
            raise EngineError(f"inject {inject_id!r} was already carried out")
        self._timed = [i for i in self._timed if i.id != inject_id]
        return self._fire(inject, now_s, "manual")

    def task_acknowledged(self, task_inject: str, now_s: float) -> None:
        """The task assigned by ``task_inject`` was acknowledged: injects waiting for it fall due."""
        for inject in self.scenario.injects:
            trigger = inject.trigger
            if isinstance(trigger, TaskAcknowledged) and trigger.inject == task_inject:
                self._schedule(inject, now_s)

    def waiting_for_ack(self) -> set[str]:
        """Task injects done whose acknowledgement some trigger still waits for."""
        return {i.trigger.inject for i in self.scenario.injects
                if isinstance(i.trigger, TaskAcknowledged) and i.id not in self.done
                and i.trigger.inject in self.done}

    # -- inside -------------------------------------------------------------------------------

    def _report(self, state: _UnitState, fix_s: float, out: list[Action]) -> None:
        fix = state.mover.at(fix_s)
        self._check_areas(state.unit.id, fix, fix_s)
        counts = state.counts
        if any(start <= fix_s < end for start, end in state.silences):
            counts.silenced += 1
            return
        counts.scheduled += 1
        degrade = next((d for d in state.degrades if d.start_s <= fix_s < d.end_s), None)
        due_s = fix_s
        if degrade is not None:
            link = degrade.link
            if fix_s < degrade.start_s + link.cut_s:
                counts.cut += 1
                return
            degrade.seen += 1
            if (degrade.seen - 1) % link.thin:
                counts.thinned += 1
                return
            if link.delay_s > 0:
                counts.delayed += 1
                due_s = fix_s + link.delay_s
        counts.released += 1
        state.seq += 1
        report = Report(state.unit, state.seq, fix_s, due_s, fix)
        if due_s > fix_s:
            self._late_seq += 1
            heapq.heappush(self._late, (due_s, self._late_seq, report))
        else:
            out.append(report)

    def _check_areas(self, unit_id: str, fix: Fix, fix_s: float) -> None:
        for inject in self._watch_area:
            trigger = inject.trigger
            assert isinstance(trigger, Enters)
            if trigger.unit == unit_id and trigger.area.contains(fix.at):
                self._watch_area = [i for i in self._watch_area if i is not inject]
                self._schedule(inject, fix_s)

    def _schedule(self, inject: Inject, when_s: float) -> None:
        if inject.id in self.done:
            return
        self._late_seq += 1
        due = InjectDue(inject, when_s + inject.delay_s, "trigger")
        heapq.heappush(self._triggered, (due.due_s, self._late_seq, due))

    def _fire(self, inject: Inject, due_s: float, cause: str) -> InjectDue:
        self.done[inject.id] = due_s
        end = self.scenario.duration_s
        if inject.kind is InjectKind.LINK and inject.link is not None and inject.unit is not None:
            length = inject.link.duration_s if inject.link.duration_s is not None else end
            self._units[inject.unit].degrades.append(_Degrade(due_s, due_s + length, inject.link))
        elif inject.kind is InjectKind.SILENT and inject.unit is not None:
            length = inject.duration_s if inject.duration_s is not None else end
            self._units[inject.unit].silences.append((due_s, due_s + length))
        return InjectDue(inject, due_s, cause)
