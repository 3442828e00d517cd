"""A task's details and priority: bounds of the request, the CoT a TAK client gets, older stored bodies."""

from __future__ import annotations

from xml.etree import ElementTree

import msgspec
import pytest

from rallypoint.model.cot import CotEvent
from rallypoint.model.task import MAX_DETAILS, Assignee, Task, TaskRequest
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import encode_event, parse_event
from rallypoint.services.tasks_cot import marker_event, task_event
from rallypoint.storage.sqlite.tasks import _DECODE, _ENCODE

BASE = {"what": "Sweep sector B", "assignee": {"callsign": "ALPHA"}}


def _remarks(event: CotEvent) -> str | None:
    """The text of the event's <remarks>, as an XML reader gets it."""
    found = ElementTree.fromstring(b"<detail>" + event.detail.xml + b"</detail>").find("remarks")
    return None if found is None else found.text


def test_details_and_priority_are_optional_and_bounded() -> None:
    plain = msgspec.json.decode(msgspec.json.encode(BASE), type=TaskRequest)
    assert (plain.details, plain.priority) == ("", 3)
    full = msgspec.json.decode(msgspec.json.encode({**BASE, "details": "from the north", "priority": 1}),
                               type=TaskRequest)
    assert (full.details, full.priority) == ("from the north", 1)
    for bad in ({"priority": 0}, {"priority": 6}, {"priority": 2.5}, {"details": "x" * (MAX_DETAILS + 1)}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(msgspec.json.encode({**BASE, **bad}), type=TaskRequest)


def test_the_details_follow_the_task_in_the_remarks_and_the_priority_is_an_attribute() -> None:
    task = Task(id="4f1c2a9e0b3d4c6f8e7a9b1c2d3e4f50", what="Sweep <B>", assignee=Assignee(uid="ANDROID-1"),
                creator="alice", created_ms=1, updated_ms=1, details="north & east\nquietly", priority=1)
    event = parse_event(encode_event(task_event(task, 1_700_000_000_000)), Limits())
    assert _remarks(event) == "Sweep <B>\n\nnorth & east\nquietly"
    assert b'priority="1"' in event.detail.xml
    assert marker_event(task, 1) is None  # no place, no marker
    plain = msgspec.structs.replace(task, details="", priority=3)
    assert _remarks(parse_event(encode_event(task_event(plain, 1)), Limits())) == "Sweep <B>"


def test_tasks_stored_before_details_existed_read_with_the_defaults() -> None:
    task = Task(id="t1", what="x", assignee=Assignee(group="Red"), creator="a", created_ms=1, updated_ms=1)
    stored = msgspec.json.decode(_ENCODE(task))
    del stored["details"], stored["priority"]
    old = _DECODE(msgspec.json.encode(stored))
    assert (old.details, old.priority) == ("", 3) and old == task
