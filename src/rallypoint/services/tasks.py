"""Tasks handed to units and teams: create, move through the lifecycle, tell people, chase the overdue.

State lives in the task store (shared by every node with ``--storage postgresql://``); every write
is a compare-and-set on the task's version, so two nodes moving one task at once cannot both win.
Each node mirrors the open tasks in memory (to match a chat reply to its task and to find overdue
ones without scanning the store); a change made on any node is announced on the bus
(``on_change``, wired to ``ClusterChanges`` by the node) and every other node re-reads that task.

What people receive goes through ``Ingest.accept`` like every producer's events (see
``services.tasks_cot`` for the CoT): addressed to the assignee and the creator's device, in the chat
class, kept by the mailbox for a receiver that is offline. As an ingest hook the service reads,
on the node a message entered, the status CoT clients send and GeoChat replies to the task desk.
The overdue check runs every ``check_period_s`` (``check_overdue``, with the node's clock): the
alert goes to the creator once, because marking the task alerted is itself a compare-and-set.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import msgspec

from rallypoint.clock import Clock
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.model.task import Task, TaskRequest, TaskState, TaskStep, Via, alerted, can_move, moved
from rallypoint.protocol.timefmt import format_time
from rallypoint.protocol.validate import is_xml_text
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import ANON_GROUP, Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.tasks_cot import (
    CHAT_TYPE,
    STATUS_TYPE,
    BadTaskCot,
    chat_text,
    desk_chat,
    is_to_desk,
    marker_event,
    read_reply,
    read_status,
    short_id,
    task_chat,
    task_event,
)
from rallypoint.services.tasks_rules import Actor, TaskConflict, TaskError, TaskNotFound, TaskRules
from rallypoint.storage.base.tasks import TaskQuery, TaskRecords

log = logging.getLogger(__name__)

TASKS_ORIGIN_ID = "tasks"
DEFAULT_CHECK_PERIOD_S = 15.0
_CAS_ATTEMPTS = 5
# Status CoT and chat replies being handled at once; more are dropped (counted) rather than queued.
MAX_PENDING_REPLIES = 256


class TaskService:
    """Tasks over a ``TaskRecords``; a node feature (no routes) and an ingest hook."""

    def __init__(
        self,
        store: TaskRecords,
        *,
        accept: Callable[[Envelope], object],
        clock: Clock,
        rules: TaskRules | None = None,
        directory: Directory | None = None,
        entered_here: Callable[[Envelope], bool] = lambda envelope: True,
        mission_exists: Callable[[str], bool] | None = None,
        device_of: Callable[[str], str | None] | None = None,
        check_period_s: float = DEFAULT_CHECK_PERIOD_S,
    ) -> None:
        self._store = store
        self._accept = accept
        self._clock = clock
        self.rules = rules if rules is not None else TaskRules()
        self._directory = directory if directory is not None else Directory()
        self._entered_here = entered_here
        self._mission_exists = mission_exists
        # The uid of a TAK client connected here as this principal (the creator's device), if any.
        self._device_of = device_of or (lambda principal: None)
        self._period_s = check_period_s
        self._open: dict[str, Task] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._jobs: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self.counts = {"created": 0, "moved": 0, "refused": 0, "alerts": 0, "unaddressed_alerts": 0,
                       "replies": 0, "send_failures": 0, "dropped": 0}

    # --- Feature ------------------------------------------------------------------------------
    @property
    def routes(self) -> tuple[()]:
        """No routes of its own (``web.api.tasks`` serves the API)."""
        return ()

    async def run(self) -> None:
        """Load the open tasks, then check for overdue ones every period until :meth:`close`."""
        await self.load()
        while not self._stop.is_set():
            try:
                await self.check_overdue()
            except Exception:
                log.exception("overdue task check failed")
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self._period_s)
            except TimeoutError:
                pass

    async def close(self) -> None:
        """Stop the check, wait for the replies being handled, close the store."""
        self._stop.set()
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        await self._store.close()

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(task_id)`` after every change this node makes (the node announces it)."""
        self._listeners.append(listener)

    async def load(self) -> None:
        """Mirror the store's open tasks."""
        self._open = {t.id: t for t in await self._store.open_tasks()}

    async def refresh(self, task_id: str) -> None:
        """Another node changed ``task_id``: re-read it into the mirror."""
        task = await self._store.get(task_id)
        if task is not None:
            self._remember(task)

    def open_tasks(self) -> list[Task]:
        """The mirrored open tasks."""
        return list(self._open.values())

    # --- API ----------------------------------------------------------------------------------
    async def create(self, actor: Actor, request: TaskRequest, *, via: Via = "api") -> Task:
        """Create and send a task; ``TaskError`` (400) when it cannot be one."""
        if not request.assignee.is_valid():
            raise TaskError("assignee: give exactly one of uid, callsign or group")
        if not request.what.strip():
            raise TaskError("what: say what is to be done")
        for name, value in (("what", request.what), ("details", request.details), ("assignee", request.assignee.name),
                            ("mission", request.mission), ("notify_uid", request.notify_uid)):
            free_text = name in ("what", "details")  # may hold line breaks and tabs, as remarks do
            if value is not None and (not is_xml_text(value) or (not free_text and not value.isprintable())):
                raise TaskError(f"{name}: contains characters a CoT message cannot carry")
        if request.mission is not None and self._mission_exists is not None and not self._mission_exists(
                request.mission):
            raise TaskError(f"mission {request.mission!r} does not exist")
        now = self._clock.now_ms()
        task = Task(
            id=uuid.uuid4().hex, what=request.what.strip(), assignee=request.assignee,
            creator=actor.principal or actor.label, created_ms=now, updated_ms=now, where=request.where,
            due_ms=request.due_ms, mission=request.mission, details=request.details.strip(), priority=request.priority,
            creator_uid=request.notify_uid or actor.uid or (
                self._device_of(actor.principal) if actor.principal is not None else None),
            groups=tuple(sorted(actor.write_groups)),
            history=(TaskStep(state=TaskState.ASSIGNED, by=actor.label, at_ms=now, via=via),),
        )
        if not await self._store.insert(task):
            raise TaskConflict("a task with this id exists")
        self.counts["created"] += 1
        self._remember(task)
        self._announce(task.id)
        self._send(task, now, first=True)
        return task

    async def get(self, actor: Actor, task_id: str) -> Task:
        """The task, if the actor may see it; ``TaskNotFound`` otherwise."""
        task = await self._store.get(task_id) if len(task_id) <= 64 else None
        if task is None or not self.rules.may_see(actor, task):
            raise TaskNotFound("no task with that id")
        return task

    async def find(self, actor: Actor, query: TaskQuery) -> list[Task]:
        """The tasks matching ``query`` that the actor may see, newest first, at most ``query.limit``.

        Visibility is decided here, not in the store: the store is read page by page until the
        limit is filled with visible tasks or the rows run out.
        """
        found: list[Task] = []
        page = query
        while True:
            rows = await self._store.query(page)
            found.extend(t for t in rows if self.rules.may_see(actor, t))
            if len(found) >= query.limit or len(rows) < page.limit:
                return found[:query.limit]
            last = rows[-1]
            page = msgspec.structs.replace(page, before=(last.created_ms, last.id))

    async def change(self, actor: Actor, task_id: str, wanted: TaskState, *, note: str = "",
                     via: Via = "api") -> Task:
        """Move a task; ``TaskNotFound``, ``TaskForbidden`` or ``TaskConflict`` when refused."""
        if not is_xml_text(note):
            raise TaskError("note: contains characters a CoT message cannot carry")
        for _ in range(_CAS_ATTEMPTS):
            task = await self.get(actor, task_id)
            self.rules.check_move(actor, task, wanted)
            if not can_move(task.state, wanted):
                raise TaskConflict(f"a task {task.state.value} cannot become {wanted.value}")
            now = self._clock.now_ms()
            new = moved(task, wanted, by=actor.label, at_ms=now, via=via, note=note)
            if await self._store.replace(new, expected_version=task.version):
                self.counts["moved"] += 1
                self._remember(new)
                self._announce(new.id)
                self._send(new, now, first=False)
                return new
        raise TaskConflict("the task kept changing; try again")

    # --- Overdue ------------------------------------------------------------------------------
    async def check_overdue(self) -> int:
        """Alert the creators of tasks that became overdue (once per task); returns how many were alerted."""
        now = self._clock.now_ms()
        sent = 0
        for seen in [t for t in self._open.values() if t.is_overdue(now) and not t.overdue_alerted]:
            task = await self._store.get(seen.id)
            if task is None or not task.is_overdue(now) or task.overdue_alerted:
                if task is not None:
                    self._remember(task)
                continue
            marked = alerted(task, now)
            if not await self._store.replace(marked, expected_version=task.version):
                continue  # another node alerted (or the task moved): its announcement tells us
            self._remember(marked)
            self._announce(marked.id)
            self._alert(marked, now)
            sent += 1
        return sent

    def _alert(self, task: Task, now: int) -> None:
        self.counts["alerts"] += 1
        due = format_time(task.due_ms or now)[:16] + "Z"
        text = (f"Task {short_id(task)} is overdue: \"{task.what}\" for {task.assignee.name} was due {due} "
                f"and is {task.state.value}.")
        log.info("task overdue", extra={"task": task.id, "creator": task.creator})
        self._publish(task_event(task, now), task.groups)
        if task.creator_uid is None:
            self.counts["unaddressed_alerts"] += 1
            return
        self._publish(desk_chat(text, now, to_uid=task.creator_uid), task.groups)

    # --- From TAK clients ---------------------------------------------------------------------
    @staticmethod
    def observes_type(cot_type: str) -> bool:
        """The CoT types :meth:`observe` acts on (the ingest path calls it for these only)."""
        return cot_type in (STATUS_TYPE, CHAT_TYPE)

    def observe(self, envelope: Envelope, audience: Audience) -> bool:
        """Ingest hook: act on a status CoT or a chat reply to the desk (on the node it entered).

        Returns True for a chat to the desk: it is answered, so no delivery-failure notice.
        """
        event = envelope.event
        if event.type == STATUS_TYPE:
            if self._entered_here(envelope):
                self._spawn(self._from_status(envelope))
            return False
        if is_to_desk(event):
            if self._entered_here(envelope):
                self._spawn(self._from_chat(envelope))
            return True
        return False

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        if len(self._jobs) >= MAX_PENDING_REPLIES:
            # Overflow policy: drop the newest (a client flooding the desk), counted and logged.
            job.close()
            self.counts["dropped"] += 1
            log.warning("task message dropped: too many waiting", extra={"pending": len(self._jobs)})
            return
        task = asyncio.get_running_loop().create_task(job)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    def actor_of(self, envelope: Envelope) -> Actor:
        """The TAK client (or API chat sender) behind an event that entered this node."""
        origin = envelope.origin
        chat = envelope.event.detail.chat
        uid = self._directory.uid_of(origin.session_id)
        if uid is None and origin.principal is not None and chat is not None and chat.members:
            uid = chat.members[0]
        callsign = self._directory.callsign_of(origin.session_id)
        session = self._directory.get(origin.session_id)
        read = session.read_groups if session is not None else (origin.read_groups or origin.groups)
        return Actor(label=callsign or uid or origin.principal or origin.session_id, principal=origin.principal,
                     uid=uid, callsign=callsign, read_groups=read, write_groups=origin.groups)

    async def _from_status(self, envelope: Envelope) -> None:
        actor = self.actor_of(envelope)
        try:
            request = read_status(envelope.event)
            assert request.task_ref is not None
            await self.change(actor, request.task_ref, request.state, note=request.note, via="cot")
        except (BadTaskCot, TaskError) as exc:
            self.counts["refused"] += 1
            log.info("task status refused", extra={"sender": actor.label, "reason": str(exc)[:200]})
            self._answer(envelope, actor, f"Task status not changed: {exc}")

    async def _from_chat(self, envelope: Envelope) -> None:
        actor = self.actor_of(envelope)
        self.counts["replies"] += 1
        try:
            request = read_reply(chat_text(envelope.event))
        except BadTaskCot as exc:
            self._answer(envelope, actor, f"Not understood: {exc} (e.g. \"done\", or \"done 1a2b3c4d\").")
            return
        wanted = request.state
        mine = [t for t in self._open.values() if self.rules.is_assignee(actor, t)]
        if request.task_ref is not None:
            mine = [t for t in mine if t.id.startswith(request.task_ref)]
        movable = [t for t in mine if can_move(t.state, wanted)]
        if len(movable) != 1:
            self.counts["refused"] += 1
            self._answer(envelope, actor, _which(movable or mine, wanted))
            return
        try:
            task = await self.change(actor, movable[0].id, wanted, note=request.note, via="chat")
        except TaskError as exc:
            self.counts["refused"] += 1
            self._answer(envelope, actor, f"Task {short_id(movable[0])} not changed: {exc}")
            return
        self._answer(envelope, actor, f"Task {short_id(task)} is now {task.state.value}: {task.what}")

    def _answer(self, envelope: Envelope, actor: Actor, text: str) -> None:
        if actor.uid is None and actor.callsign is None:
            return
        now = self._clock.now_ms()
        chat = desk_chat(text, now, to_uid=actor.uid, to_callsign=None if actor.uid else actor.callsign)
        self._publish(chat, envelope.origin.groups)

    # --- Sending ------------------------------------------------------------------------------
    def _send(self, task: Task, now: int, *, first: bool) -> None:
        self._publish(task_event(task, now), task.groups)
        marker = marker_event(task, now)
        if marker is not None:
            self._publish(marker, task.groups)
        if first:
            self._publish(task_chat(task, now), task.groups)

    def _publish(self, event: CotEvent, groups: Iterable[str]) -> None:
        origin = Origin(session_id=TASKS_ORIGIN_ID, groups=frozenset(groups) or frozenset({ANON_GROUP}))
        try:
            self._accept(Envelope(event, origin, self._clock.now_ms()))
        except RemoteProtocolError as exc:
            self.counts["send_failures"] += 1
            log.warning("task message refused", extra={"uid": event.uid, "reason": exc.reason})

    def _remember(self, task: Task) -> None:
        if task.is_open:
            self._open[task.id] = task
        else:
            self._open.pop(task.id, None)

    def _announce(self, task_id: str) -> None:
        for listener in self._listeners:
            listener(task_id)

    def counters(self) -> list[tuple[str, str, float]]:
        """For ``ServerMetrics.add_counters``."""
        return [
            ("rallypoint_tasks_created_total", "Tasks created", float(self.counts["created"])),
            ("rallypoint_tasks_moved_total", "Task state changes", float(self.counts["moved"])),
            ("rallypoint_tasks_refused_total", "Task changes from clients refused", float(self.counts["refused"])),
            ("rallypoint_tasks_overdue_alerts_total", "Overdue alerts raised", float(self.counts["alerts"])),
            ("rallypoint_tasks_chat_replies_total", "GeoChat replies to the task desk",
             float(self.counts["replies"])),
            ("rallypoint_tasks_send_failures_total", "Task messages the ingest refused",
             float(self.counts["send_failures"])),
            ("rallypoint_tasks_dropped_total", "Status CoT and chat replies dropped: too many waiting",
             float(self.counts["dropped"])),
        ]


def _which(tasks: list[Task], wanted: TaskState) -> str:
    if not tasks:
        return f"You have no open task that can become {wanted.value}."
    listed = "; ".join(f"{short_id(t)} {t.what[:40]} ({t.state.value})" for t in tasks[:5])
    return (f"Which task? You have {len(tasks)}: {listed}. "
            f"Reply e.g. \"{wanted.value if wanted is not TaskState.IN_PROGRESS else 'start'} "
            f"{short_id(tasks[0])}\".")
