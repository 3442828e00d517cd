"""The task service over a real SQLite store and a ManualClock: rules, messages sent, chat replies, overdue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.model.cot import Point
from rallypoint.model.task import Assignee, TaskPoint, TaskRequest, TaskState
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.tasks import MAX_PENDING_REPLIES, TaskService
from rallypoint.services.tasks_cot import DESK_UID, MARKER_TYPE, STATUS_TYPE, TASK_TYPE, chat_text
from rallypoint.services.tasks_rules import Actor, TaskConflict, TaskForbidden, TaskNotFound, TaskRules
from rallypoint.storage.base.tasks import TaskQuery
from rallypoint.storage.sqlite.tasks import SqliteTaskRecords
from tests.support.poll import wait_until

ALICE = Actor(label="alice", principal="alice", read_groups=frozenset({"Red"}), write_groups=frozenset({"Red"}))
BOB = Actor(label="bob", principal="bob", read_groups=frozenset({"Red"}), write_groups=frozenset({"Red"}))
EVE = Actor(label="eve", principal="eve", read_groups=frozenset({"Blue"}), write_groups=frozenset({"Blue"}))
ADMIN = Actor(label="root", principal="root", admin=True)
ALPHA = Actor(label="ALPHA", uid="uid-alpha", callsign="ALPHA", read_groups=frozenset({"Red"}))


class Sent:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def __call__(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def types(self) -> list[str]:
        return [e.event.type for e in self.envelopes]

    def texts(self) -> list[str]:
        return [chat_text(e.event) for e in self.envelopes if e.event.type == "b-t-f"]


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[TaskService, Sent, ManualClock]]:
    clock = ManualClock()
    sent = Sent()
    service = TaskService(SqliteTaskRecords(tmp_path / "tasks.db"), accept=sent, clock=clock,
                          rules=TaskRules(holder_of={"uid-alpha": "alpha-phone"}.get))
    await service.load()
    try:
        yield service, sent, clock
    finally:
        await service.close()


def request(**kw: object) -> TaskRequest:
    base: dict[str, object] = {"what": "Sweep sector B", "assignee": Assignee(callsign="ALPHA")}
    return TaskRequest(**{**base, **kw})  # type: ignore[arg-type]


async def test_create_sends_the_task_marker_and_chat_to_the_assignee(
        setup: tuple[TaskService, Sent, ManualClock]) -> None:
    service, sent, _ = setup
    task = await service.create(ALICE, request(where=TaskPoint(39.1, -120.0), notify_uid="uid-alice"))
    assert task.state is TaskState.ASSIGNED and task.creator == "alice" and task.groups == ("Red",)
    assert sent.types() == [TASK_TYPE, MARKER_TYPE, "b-t-f"]
    for envelope in sent.envelopes:
        dests = {(d.callsign, d.uid) for d in envelope.event.detail.dests}
        assert (("ALPHA", None) in dests) and (envelope.origin.groups == frozenset({"Red"}))
    assert (None, "uid-alice") in {(d.callsign, d.uid) for d in sent.envelopes[0].event.detail.dests}
    assert b"Sweep sector B" in sent.envelopes[0].event.detail.xml
    assert "Reply ack, start, done or fail" in sent.texts()[0]


async def test_who_may_move_what(setup: tuple[TaskService, Sent, ManualClock]) -> None:
    service, _, _ = setup
    task = await service.create(ALICE, request(assignee=Assignee(uid="uid-alpha")))
    with pytest.raises(TaskNotFound):
        await service.get(EVE, task.id)  # not in the task's groups
    assert (await service.get(BOB, task.id)).id == task.id  # reads Red
    with pytest.raises(TaskForbidden):
        await service.change(BOB, task.id, TaskState.DONE)
    # The API principal holding the assignee's uid is the assignee: it may start, not cancel.
    phone = Actor(label="alpha-phone", principal="alpha-phone")
    moved = await service.change(phone, task.id, TaskState.IN_PROGRESS, note="walking in")
    assert moved.state is TaskState.IN_PROGRESS and moved.history[-1].note == "walking in"
    with pytest.raises(TaskForbidden, match="cancel"):
        await service.change(phone, task.id, TaskState.CANCELLED)
    with pytest.raises(TaskConflict):
        await service.change(ALICE, task.id, TaskState.ACKNOWLEDGED)
    done = await service.change(ADMIN, task.id, TaskState.CANCELLED)
    assert done.state is TaskState.CANCELLED and [s.state for s in done.history] == [
        TaskState.ASSIGNED, TaskState.IN_PROGRESS, TaskState.CANCELLED]
    assert service.open_tasks() == []


async def test_team_tasks_belong_to_readers_of_the_group(setup: tuple[TaskService, Sent, ManualClock]) -> None:
    service, _, _ = setup
    task = await service.create(ALICE, request(assignee=Assignee(group="Blue")))
    assert (await service.change(EVE, task.id, TaskState.ACKNOWLEDGED)).state is TaskState.ACKNOWLEDGED
    assert [t.id for t in await service.find(EVE, TaskQuery(assignee="Blue"))] == [task.id]


async def test_overdue_alerts_the_creator_once(setup: tuple[TaskService, Sent, ManualClock]) -> None:
    service, sent, clock = setup
    task = await service.create(ALICE, request(due_ms=clock.now_ms() + 60_000, notify_uid="uid-alice"))
    later = await service.create(ALICE, request(due_ms=clock.now_ms() + 3_600_000, notify_uid="uid-alice"))
    sent.envelopes.clear()
    assert await service.check_overdue() == 0
    clock.advance(59)
    assert await service.check_overdue() == 0
    clock.advance(1)
    assert await service.check_overdue() == 1
    alerts = [e for e in sent.envelopes if e.event.type == "b-t-f"]
    assert len(alerts) == 1 and alerts[0].event.detail.dests[0].uid == "uid-alice"
    assert "overdue" in chat_text(alerts[0].event) and task.id[:8] in chat_text(alerts[0].event)
    clock.advance(600)
    assert await service.check_overdue() == 0
    assert (await service.get(ALICE, task.id)).overdue_alerted
    assert not (await service.get(ALICE, later.id)).overdue_alerted
    # A task finished in time is never overdue.
    await service.change(ALICE, later.id, TaskState.DONE)
    clock.advance(7200)
    assert await service.check_overdue() == 0


class Phone:
    """A connected client as the directory sees it (what the task service reads of a sender)."""

    id = "s-alpha"
    read_groups = frozenset({"Red"})
    write_groups = frozenset({"Red"})

    def offer(self, envelope: Envelope) -> None:
        return None


def alpha_directory() -> Directory:
    directory = Directory()
    directory.add(Phone())
    directory.bind("s-alpha", uid="uid-alpha", callsign="ALPHA")
    return directory


def from_alpha(event_type: str, detail: str) -> Envelope:
    event = make_event(uid=f"msg-{uuid.uuid4()}", type=event_type, how="h-g-i-g-o", time=1, start=1, stale=10**13,
                       point=Point(0.0, 0.0), detail_xml=detail.encode())
    return Envelope(event, Origin(session_id="s-alpha", groups=frozenset({"Red"})), 1)


def reply(text: str) -> str:
    return (f'<__chat parent="RootContactGroup" chatroom="Tasks" id="{DESK_UID}" senderCallsign="ALPHA">'
            f'<chatgrp uid0="uid-alpha" uid1="{DESK_UID}" id="{DESK_UID}"/></__chat>'
            f'<remarks>{text}</remarks><marti><dest uid="{DESK_UID}"/></marti>')


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[TaskService, Sent]]:
    sent = Sent()
    service = TaskService(SqliteTaskRecords(tmp_path / "tasks.db"), accept=sent, clock=ManualClock(),
                          directory=alpha_directory())
    await service.load()
    try:
        yield service, sent
    finally:
        await service.close()


async def answered(service: TaskService, sent: Sent, envelope: Envelope, *, held: bool = True) -> str:
    """Hand ``envelope`` to the hook and wait for the desk's answer to ALPHA."""
    sent.envelopes.clear()
    assert service.observe(envelope, Audience()) is held
    found = await wait_until(lambda: [e for e in sent.envelopes if e.event.type == "b-t-f"], "the desk's answer")
    assert found[0].event.detail.dests[0].uid == "uid-alpha"
    return chat_text(found[0].event)


async def test_a_chat_reply_moves_the_one_open_task_and_asks_when_ambiguous(desk: tuple[TaskService, Sent]) -> None:
    service, sent = desk
    first = await service.create(ALICE, request())
    assert "is now acknowledged" in await answered(service, sent, from_alpha("b-t-f", reply("ack")))
    assert (await service.get(ALICE, first.id)).state is TaskState.ACKNOWLEDGED
    second = await service.create(ALICE, request(what="Check the bridge"))
    question = await answered(service, sent, from_alpha("b-t-f", reply("done")))
    assert question.startswith("Which task? You have 2") and first.id[:8] in question and second.id[:8] in question
    text = await answered(service, sent, from_alpha("b-t-f", reply(f"Done {second.id[:8]} bridge is clear")))
    assert "is now done" in text
    got = await service.get(ALICE, second.id)
    assert got.state is TaskState.DONE and got.history[-1].note == "bridge is clear" and got.history[-1].via == "chat"
    assert "Not understood" in await answered(service, sent, from_alpha("b-t-f", reply("what?")))


async def test_a_status_cot_moves_a_task_and_a_bad_one_is_answered(desk: tuple[TaskService, Sent]) -> None:
    service, sent = desk
    task = await service.create(ALICE, request())
    sent.envelopes.clear()
    detail = f'<__rallypoint_task_status id="{task.id}" state="in_progress" note="en route"/>'
    assert not service.observe(from_alpha(STATUS_TYPE, detail), Audience())
    await wait_until(lambda: service.counts["moved"] == 1, "the move")
    got = await service.get(ALICE, task.id)
    assert got.state is TaskState.IN_PROGRESS and got.history[-1].by == "ALPHA" and got.history[-1].via == "cot"
    assert [e.event.type for e in sent.envelopes] == [TASK_TYPE]  # the update, no new chat
    bad = f'<__rallypoint_task_status id="{task.id}" state="cancelled"/>'
    assert "only the creator or an admin may cancel" in await answered(
        service, sent, from_alpha(STATUS_TYPE, bad), held=False)
    nonsense = f'<__rallypoint_task_status id="{task.id}" state="teleported"/>'
    assert "state must be one of" in await answered(service, sent, from_alpha(STATUS_TYPE, nonsense), held=False)
    assert service.counts["refused"] == 2


async def test_a_limited_list_is_filled_with_tasks_the_caller_may_see(
        setup: tuple[TaskService, Sent, ManualClock]) -> None:
    service, _, clock = setup
    mine = await service.create(EVE, request(assignee=Assignee(group="Blue")))
    for _ in range(5):
        clock.advance(1)
        await service.create(ALICE, request())
    assert [t.id for t in await service.find(EVE, TaskQuery(limit=2))] == [mine.id]
    assert len(await service.find(ALICE, TaskQuery(limit=2))) == 2


async def test_a_flood_of_replies_is_bounded(desk: tuple[TaskService, Sent]) -> None:
    service, _ = desk
    flood = [from_alpha("b-t-f", reply("ack")) for _ in range(MAX_PENDING_REPLIES + 50)]
    for envelope in flood:
        service.observe(envelope, Audience())
    assert service.counts["dropped"] == 50
    await wait_until(lambda: service.counts["replies"] == MAX_PENDING_REPLIES, "the replies handled")
