"""The task CoT: what the server builds and how it reads a client's status CoT and chat replies."""

from __future__ import annotations

import pytest

from rallypoint.model.cot import CotEvent, Point
from rallypoint.model.task import Assignee, Task, TaskPoint, TaskState, moved
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import encode_event, make_event, parse_event
from rallypoint.services.tasks_cot import (
    ASSIGNEE_RELATION,
    DESK_UID,
    BadTaskCot,
    desk_chat,
    is_to_desk,
    marker_event,
    read_reply,
    read_status,
    task_chat,
    task_event,
)

TASK = Task(id="4f1c2a9e0b3d4c6f8e7a9b1c2d3e4f50", what="Sweep <sector> B & C", assignee=Assignee(uid="ANDROID-1"),
            creator="alice", created_ms=1_700_000_000_000, updated_ms=1_700_000_000_000,
            where=TaskPoint(39.2, -120.1, 1900.0), due_ms=1_700_000_600_000, creator_uid="ANDROID-alice")


def test_the_task_event_is_addressed_linked_and_survives_a_round_trip() -> None:
    event = parse_event(encode_event(task_event(TASK, 1_700_000_000_000)), Limits())
    assert event.type == "t-x-rp-task" and event.uid == f"rp-task-{TASK.id}"
    assert event.detail.link_uid == "ANDROID-1" and event.detail.link_relation == ASSIGNEE_RELATION
    assert b'state="assigned"' in event.detail.xml and b"Sweep &lt;sector&gt; B &amp; C" in event.detail.xml
    addressed = task_event(TASK, 1_700_000_000_000)
    assert {d.uid for d in addressed.detail.dests} == {"ANDROID-1", "ANDROID-alice"}
    assert event.point.lat == pytest.approx(39.2)


def test_the_marker_shows_the_state_and_only_exists_with_a_place() -> None:
    done = moved(TASK, TaskState.DONE, by="x", at_ms=1, via="api")
    marker = marker_event(done, 1_700_000_000_000)
    assert marker is not None and marker.type == "b-m-p-s-m"
    assert marker.detail.callsign == "Task: Sweep <sector> B & C [done]"
    assert marker_event(Task(id="t", what="x", assignee=Assignee(group="Red"), creator="a", created_ms=1,
                             updated_ms=1), 1) is None


def test_chats_of_the_desk_are_not_replies_to_it() -> None:
    assert not is_to_desk(desk_chat("hello", 1_700_000_000_000, to_uid="ANDROID-1"))
    assert not is_to_desk(task_chat(TASK, 1_700_000_000_000))


def test_a_reply_names_a_move_an_optional_task_and_a_note() -> None:
    assert read_reply("ack").state is TaskState.ACKNOWLEDGED
    got = read_reply("Done 4f1c2a9e road is open")
    assert (got.state, got.task_ref, got.note) == (TaskState.DONE, "4f1c2a9e", "road is open")
    assert read_reply("fail too much water").task_ref is None  # "too" is no task reference
    assert read_reply("start.").state is TaskState.IN_PROGRESS
    for text in ("", "hello", "finished"):
        with pytest.raises(BadTaskCot):
            read_reply(text)


def _status(detail: str) -> CotEvent:
    return make_event(uid="s1", type="t-x-rp-task-s", how="h-g-i-g-o", time=1, start=1, stale=2,
                      point=Point(0.0, 0.0), detail_xml=detail.encode())


def test_a_status_cot_needs_an_id_and_a_known_state() -> None:
    ok = read_status(_status(f'<__rallypoint_task_status id="{TASK.id}" state="IN_PROGRESS" note="go"/>'))
    assert (ok.state, ok.task_ref, ok.note) == (TaskState.IN_PROGRESS, TASK.id, "go")
    for detail, words in (("<remarks>x</remarks>", "no <__rallypoint_task_status>"),
                          ('<__rallypoint_task_status state="done"/>', "id attribute"),
                          (f'<__rallypoint_task_status id="{TASK.id}" state="won"/>', "state must be one of")):
        with pytest.raises(BadTaskCot, match=words):
            read_status(_status(detail))
    assert DESK_UID == "rallypoint-tasks"
