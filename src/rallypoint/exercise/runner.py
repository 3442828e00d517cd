"""``rallypoint exercise run``: plays a scenario against a real server, live-controlled, and sums it up.

One asyncio task plays the engine against the exercise clock: it takes everything due, sends it on
the units' own connections (or through the API), and sleeps until the next thing falls due or a
control command arrives. Alongside: the command feed (when registered with the control API), the
progress reports, and the acknowledgement watch for ``task_acknowledged`` triggers, which polls
``GET /api/tasks/{id}`` once a second while a trigger waits (the server's own record, whichever
client acknowledged it). Lag is measured for every report: actual send time minus the wall time
the exercise clock scheduled it for.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from rallypoint.client.http import ApiError
from rallypoint.exercise.api import ACKNOWLEDGED, Command, ExerciseApi, perform_api_inject
from rallypoint.exercise.clock import ClockError, ClockState, ExerciseClock
from rallypoint.exercise.engine import Engine, EngineError, InjectDue, Report
from rallypoint.exercise.events import PositionEncoder, chat_event, emergency_event, marker_event, record_event
from rallypoint.exercise.model import API_KINDS, InjectKind, Scenario
from rallypoint.exercise.transport import Target, UnitLinks

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0
ACK_POLL_S = 1.0
# Position reports stay valid this many report periods (wall time), at least a minute.
STALE_PERIODS = 3.0
MIN_STALE_S = 60.0
# The shortest sleep between two rounds of sending (adds at most this much lag to a report).
TICK_S = 0.005
# How long the end waits for reports still queued on slow connections.
FLUSH_S = 30.0


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run: where, how fast, how to start, and the API for injects and control."""

    target: Target
    speed: float = 1.0
    start_paused: bool = False
    api: ExerciseApi | None = None
    scenario_sha256: str = ""


@dataclass(slots=True)
class InjectRecord:
    """One inject as carried out."""

    id: str
    kind: str
    cause: str
    clock_s: float
    ok: bool
    note: str = ""


@dataclass(slots=True)
class RunStats:
    """What the run did so far (the progress display and the JSON summary read it)."""

    lags_s: list[float] = field(default_factory=list)
    # The worst lag of each 10 s of play (wall time), to see when a run fell behind.
    worst_by_10s: list[float] = field(default_factory=list)
    injects: list[InjectRecord] = field(default_factory=list)
    registered: bool = False
    commands: int = 0
    refused_commands: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Runner:
    """Plays one scenario; :meth:`run` returns when it ends or is stopped."""

    def __init__(self, scenario: Scenario, options: RunOptions, *,
                 on_progress: Callable[[Runner], None] | None = None) -> None:
        self.scenario = scenario
        self.options = options
        self.engine = Engine(scenario)
        self.clock = ExerciseClock(options.speed)
        self.links = UnitLinks(options.target, self._written)
        self.stats = RunStats()
        self._positions = PositionEncoder(scenario.id)
        self._on_progress = on_progress
        self._changed = asyncio.Event()
        self._task_ids: dict[str, str] = {}
        self._manual: list[InjectDue] = []
        self._epoch_offset = time.time() - time.monotonic()
        self._cpu_start = time.process_time()
        self._started = time.monotonic()

    # -- reading the state --------------------------------------------------------------------------

    def clock_s(self) -> float:
        """Exercise seconds now."""
        return self.clock.now(time.monotonic())

    def summary(self) -> dict[str, Any]:
        """The run as JSON-ready data (docs/exercises.md, "Running")."""
        counts = self.engine.counts()
        lags = self.stats.lags_s
        return {
            "exercise": self.scenario.id, "state": self.clock.state.value, "clock_s": round(self.clock_s(), 3),
            "speed": self.clock.speed, "units": len(self.scenario.units), "connected": self.links.connected,
            "sent": self.links.written, "send_errors": self.links.send_errors,
            "backlog_dropped": self.links.backlog_dropped, "received": self.links.received,
            "registered": self.stats.registered,
            "injects": [asdict(i) | {"clock_s": round(i.clock_s, 3)} for i in self.stats.injects],
            "links": {uid: {"scheduled": c.scheduled, "sent": c.released, "delayed": c.delayed, "thinned": c.thinned,
                            "cut": c.cut, "silenced": c.silenced} for uid, c in counts.items()},
            "lag_ms": {"count": len(lags), "p50": round(percentile(lags, 0.5) * 1000, 2),
                       "p99": round(percentile(lags, 0.99) * 1000, 2),
                       "max": round(max(lags, default=0.0) * 1000, 2),
                       "worst_per_10s": [round(w * 1000, 1) for w in self.stats.worst_by_10s]},
            "cpu_s": round(time.process_time() - self._cpu_start, 3),
            "wall_s": round(time.monotonic() - self._started, 3),
        }

    # -- the run ------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Connect, register, play until the end (or a stop), report, close; the summary."""
        api = self.options.api
        if api is not None:
            self.stats.registered = await api.register_run(self.scenario, self.options.scenario_sha256,
                                                       self.clock.speed)
            if not self.stats.registered:
                log.warning("the server has no exercise control API; running without live control")
        await self.links.open([u.id for u in self.scenario.units])
        # Connecting (TLS handshakes) is not playing: CPU and wall time count from here.
        self._started = time.monotonic()
        self._cpu_start = time.process_time()
        try:
            if not self.options.start_paused:
                self.clock.start(time.monotonic())
            async with asyncio.TaskGroup() as group:
                helpers = [group.create_task(self._progress_loop())]
                if api is not None and self.stats.registered:
                    helpers.append(group.create_task(self._command_loop(api)))
                if api is not None:
                    helpers.append(group.create_task(self._ack_loop(api)))
                await self._play()
                await self.links.flush(FLUSH_S)
                for helper in helpers:
                    helper.cancel()
            await self._report_progress()
        finally:
            await self.links.close()
        return self.summary()

    async def _play(self) -> None:
        end = self.scenario.duration_s
        while self.clock.state is not ClockState.STOPPED:
            if self.clock.state is ClockState.RUNNING:
                for action in self.engine.advance(self.clock_s()):
                    await self._act(action)
                # The exercise lasts its duration (triggers may still fire), and until every late report is out.
                if self.engine.finished() and self.clock_s() >= end:
                    self.clock.stop(time.monotonic())
                    return
            self._changed.clear()
            due = self.engine.next_due()
            await self._sleep_until(due if due is not None else end)

    async def _sleep_until(self, clock_s: float) -> None:
        wall = self.clock.wall_at(clock_s)
        timeout = None if wall is None else wall - time.monotonic()
        if timeout is not None and timeout <= 0:
            return
        if timeout is not None:
            # Thousands of units due a fraction of a millisecond apart are taken a tick at a time:
            # one wake-up per tick, not one per report.
            timeout = max(timeout, TICK_S)
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    async def _act(self, action: Report | InjectDue) -> None:
        now = time.monotonic()
        now_ms = int((now + self._epoch_offset) * 1000)
        if isinstance(action, Report):
            # The event's time is the wall time the clock scheduled its position for (never later than
            # now): a delayed report, or one the runner sends behind schedule, arrives late rather than
            # leaving a gap in its unit's rhythm.
            fix_wall = self.clock.wall_at(action.fix_s)
            taken_ms = (now_ms - int((action.due_s - action.fix_s) / self.clock.speed * 1000) if fix_wall is None
                        else min(now_ms, int((fix_wall + self._epoch_offset) * 1000)))
            stale = max(MIN_STALE_S, STALE_PERIODS * action.unit.rate_s / self.clock.speed)
            data = self._positions.encode(action.unit, action.fix, taken_ms, stale)
            self.links.queue(action.unit.id, data, self.clock.wall_at(action.due_s))
            return
        await self._inject(action, now_ms)

    def _written(self, scheduled: float | None) -> None:
        """A report is being written to its socket: its lag is measured here."""
        if scheduled is not None:
            now = time.monotonic()
            lag = max(0.0, now - scheduled)
            self.stats.lags_s.append(lag)
            worst, window = self.stats.worst_by_10s, int((now - self._started) // 10)
            worst.extend([0.0] * (window + 1 - len(worst)))
            worst[window] = max(worst[window], lag)

    async def _inject(self, due: InjectDue, now_ms: int) -> None:
        inject, ex = due.inject, self.scenario.id
        unit = self.scenario.unit(inject.unit) if inject.unit is not None else None
        sender = unit.id if unit is not None else self.scenario.units[0].id
        ok, note = True, ""
        match inject.kind:
            case InjectKind.EMERGENCY | InjectKind.EMERGENCY_CANCEL:
                assert unit is not None
                at = self.engine.position(unit.id, due.due_s).at
                ok = await self.links.send(sender, emergency_event(
                    ex, unit, inject, at, now_ms, cancel=inject.kind is InjectKind.EMERGENCY_CANCEL))
            case InjectKind.CHAT:
                assert unit is not None
                ok = await self.links.send(sender, chat_event(ex, unit, inject, now_ms))
            case InjectKind.MARKER:
                ok = await self.links.send(sender, marker_event(ex, unit, inject, now_ms))
            case InjectKind.LINK | InjectKind.SILENT:
                note = "applied by the runner"
            case _ if inject.kind in API_KINDS:
                ok, note = await self._api_inject(due)
        if inject.kind in API_KINDS or inject.kind in (InjectKind.LINK, InjectKind.SILENT):
            # Nothing of these shows in history by itself: a marker event records them (stored, never delivered).
            await self.links.send(sender, record_event(ex, inject.unit, inject, now_ms, note))
        self.stats.injects.append(InjectRecord(inject.id, inject.kind.value, due.cause, due.due_s, ok, note))
        log.info("exercise inject", extra={"inject": inject.id, "kind": inject.kind.value, "cause": due.cause,
                                          "clock_s": round(due.due_s, 1), "ok": ok, "note": note})

    async def _api_inject(self, due: InjectDue) -> tuple[bool, str]:
        api = self.options.api
        if api is None:
            return False, "needs --api: not carried out"
        outcome = await perform_api_inject(api, self.scenario, due.inject)
        if outcome.made_id and due.inject.kind is InjectKind.TASK:
            self._task_ids[due.inject.id] = outcome.made_id
        return outcome.ok, outcome.note

    # -- alongside ----------------------------------------------------------------------------------

    def apply(self, command: Command) -> None:
        """Carry out one control command (from the command feed, or a test)."""
        now = time.monotonic()
        self.stats.commands += 1
        try:
            match command.action:
                case "start":
                    self.clock.start(now)
                case "pause":
                    self.clock.pause(now)
                case "resume":
                    self.clock.resume(now)
                case "stop":
                    self.clock.stop(now)
                case "speed" if command.speed is not None:
                    self.clock.set_speed(now, command.speed)
                case "inject" if command.inject is not None:
                    self._manual.append(self.engine.inject_now(command.inject, self.clock.now(now)))
                case _:
                    raise ClockError(f"unknown command {command.action!r}")
        except (ClockError, EngineError) as exc:
            self.stats.refused_commands.append(f"{command.seq} {command.action}: {exc}")
            log.warning("exercise command refused", extra={"seq": command.seq, "reason": str(exc)})
        self._changed.set()

    async def _command_loop(self, api: ExerciseApi) -> None:
        after = 0
        while True:
            try:
                commands = await api.command_feed(self.scenario.id, after)
            except (ApiError, httpx.HTTPError) as exc:
                log.warning("exercise command feed failed; retrying", extra={"reason": str(exc)})
                await asyncio.sleep(ACK_POLL_S)
                continue
            for command in commands:
                after = max(after, command.seq)
                self.apply(command)
                while self._manual:
                    await self._inject(self._manual.pop(0), int(time.time() * 1000))

    async def _progress_loop(self) -> None:
        while True:
            await self._report_progress()
            await asyncio.sleep(PROGRESS_EVERY_S)

    async def _report_progress(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self)
        api = self.options.api
        if api is None or not self.stats.registered:
            return
        try:
            await api.report_progress(self.scenario.id, state=self.clock.state.value, clock_s=self.clock_s(),
                               speed=self.clock.speed, sent=self.links.written, injects_done=len(self.stats.injects))
        except (ApiError, httpx.HTTPError) as exc:
            log.warning("exercise progress report failed", extra={"reason": str(exc)})

    async def _ack_loop(self, api: ExerciseApi) -> None:
        while True:
            for inject_id in sorted(self.engine.waiting_for_ack()):
                task_id = self._task_ids.get(inject_id)
                if task_id is None:
                    continue
                try:
                    state = await api.task_state(task_id)
                except (ApiError, httpx.HTTPError) as exc:
                    log.warning("exercise task check failed", extra={"task": task_id, "reason": str(exc)})
                    continue
                if state in ACKNOWLEDGED:
                    self.engine.task_acknowledged(inject_id, self.clock_s())
                    self._changed.set()
            await asyncio.sleep(ACK_POLL_S)
