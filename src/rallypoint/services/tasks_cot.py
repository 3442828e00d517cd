"""The CoT of tasks: what the server sends about a task, and what a TAK client sends back.

Sent by the server (all addressed with ``<marti><dest .../>`` to the assignee and the creator's
device, so they travel in the chat class and wait in the mailbox for an offline receiver):

* ``t-x-rp-task`` (uid ``rp-task-<id>``): the task itself, ``<__rallypoint_task .../>`` with its
  state, a ``<remarks>`` holding what to do, and ``<link>`` to the assignee when it is a uid;
* ``b-m-p-s-m`` (uid ``rp-task-<id>.marker``), only when the task has a place: a map marker named
  ``Task: <what>`` (``[state]`` appended once it is not ``assigned``), linked to the assignee;
* GeoChat ``b-t-f`` from the task desk (uid ``rallypoint-tasks``, callsign ``Tasks``): the task in
  words for stock clients, answers to their replies, and the overdue alert for the creator.

Sent by a client: ``t-x-rp-task-s`` with ``<__rallypoint_task_status id= state= note=/>``, or a
GeoChat reply to the task desk whose text starts with ``ack``, ``start``, ``done`` or ``fail``
(see docs/tasks.md).
"""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape, quoteattr

import msgspec

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent, Point
from rallypoint.model.task import MAX_NOTE, Task, TaskState
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.timefmt import format_time
from rallypoint.protocol.xml_codec import make_event
from rallypoint.protocol.xmlsafe import parse_fragment

TASK_TYPE = "t-x-rp-task"
STATUS_TYPE = "t-x-rp-task-s"
MARKER_TYPE = "b-m-p-s-m"
CHAT_TYPE = "b-t-f"
DESK_UID = "rallypoint-tasks"
DESK_CALLSIGN = "Tasks"
TASK_STALE_MS = 24 * 3600 * 1000
CHAT_STALE_MS = 24 * 3600 * 1000
# The link relation of a task (and its marker) to its assignee.
ASSIGNEE_RELATION = "t-a"
_HOW = "h-g-i-g-o"
_NOWHERE = Point(0.0, 0.0, 0.0, 9999999.0, 9999999.0)
_LIMITS = Limits()
# Reply words of a GeoChat answer, first word of the text, any case.
REPLY_WORDS: dict[str, TaskState] = {
    "ack": TaskState.ACKNOWLEDGED, "acknowledge": TaskState.ACKNOWLEDGED, "acknowledged": TaskState.ACKNOWLEDGED,
    "start": TaskState.IN_PROGRESS, "started": TaskState.IN_PROGRESS, "starting": TaskState.IN_PROGRESS,
    "done": TaskState.DONE, "complete": TaskState.DONE, "completed": TaskState.DONE,
    "fail": TaskState.FAILED, "failed": TaskState.FAILED,
}


class StatusRequest(msgspec.Struct, frozen=True):
    """A client's request to move a task: by id (or an id prefix), to ``state``, with a note."""

    state: TaskState
    task_ref: str | None = None
    note: str = ""


class BadTaskCot(ValueError):
    """A status CoT or chat reply the server cannot read; the message says what is wrong."""


def short_id(task: Task) -> str:
    """The first 8 characters of the id: what people type in a chat reply."""
    return task.id[:8]


def _dest_xml(task: Task) -> str:
    a = task.assignee
    dests = [f"<dest {a.kind}={quoteattr(a.name)}/>"]
    if task.creator_uid and task.creator_uid != a.uid:
        dests.append(f"<dest uid={quoteattr(task.creator_uid)}/>")
    return f"<marti>{''.join(dests)}</marti>"


def _link_xml(task: Task) -> str:
    uid = task.assignee.uid
    if uid is None:
        return ""
    return f"<link uid={quoteattr(uid)} type=\"a-f-G\" relation=\"{ASSIGNEE_RELATION}\"/>"


def task_event(task: Task, now_ms: int) -> CotEvent:
    """``t-x-rp-task`` for the task as it is now, addressed to its assignee and the creator's device."""
    a = task.assignee
    attrs = [
        f"id={quoteattr(task.id)}", f"state={quoteattr(task.state.value)}", f"version=\"{task.version}\"",
        f"creator={quoteattr(task.creator)}", f"assignee_{a.kind}={quoteattr(a.name)}",
    ]
    if task.due_ms is not None:
        attrs.append(f"due={quoteattr(format_time(task.due_ms))}")
    if task.mission is not None:
        attrs.append(f"mission={quoteattr(task.mission)}")
    attrs.append(f"priority=\"{task.priority}\"")
    if task.overdue_alerted:
        attrs.append("overdue=\"true\"")
    detail = (
        f"<__rallypoint_task {' '.join(attrs)}/>"
        f"<contact callsign={quoteattr(marker_name(task))}/>"
        f"<remarks>{escape(remarks(task))}</remarks>{_link_xml(task)}{_dest_xml(task)}"
    )
    return make_event(uid=f"rp-task-{task.id}", type=TASK_TYPE, how=_HOW, time=now_ms, start=now_ms,
                      stale=now_ms + TASK_STALE_MS, point=_point(task), detail_xml=detail.encode())


def remarks(task: Task) -> str:
    """What a TAK client shows as the remarks: what to do, then the details after a blank line."""
    return f"{task.what}\n\n{task.details}" if task.details else task.what


def marker_name(task: Task) -> str:
    """``Task: <what>`` (shortened), with ``[state]`` once it is past ``assigned``."""
    what = task.what if len(task.what) <= 40 else task.what[:39] + "…"
    suffix = "" if task.state is TaskState.ASSIGNED else f" [{task.state.value}]"
    return f"Task: {what}{suffix}"


def marker_event(task: Task, now_ms: int) -> CotEvent | None:
    """The map marker of a task with a place (None without one), linked to its assignee."""
    if task.where is None:
        return None
    detail = (
        f"<contact callsign={quoteattr(marker_name(task))}/>"
        f"<remarks>{escape(remarks(task))}</remarks>{_link_xml(task)}"
        f"<__rallypoint_task id={quoteattr(task.id)} state={quoteattr(task.state.value)}/>"
        f"<color argb=\"{_colour(task.state)}\"/>{_dest_xml(task)}"
    )
    return make_event(uid=f"rp-task-{task.id}.marker", type=MARKER_TYPE, how=_HOW, time=now_ms, start=now_ms,
                      stale=now_ms + TASK_STALE_MS, point=_point(task), detail_xml=detail.encode())


def _colour(state: TaskState) -> str:
    # ARGB as a signed 32-bit integer, as ATAK writes it: yellow open, green done, red failed, grey cancelled.
    match state:
        case TaskState.DONE:
            return "-16711936"
        case TaskState.FAILED:
            return "-65536"
        case TaskState.CANCELLED:
            return "-7829368"
        case _:
            return "-256"


def _point(task: Task) -> Point:
    if task.where is None:
        return _NOWHERE
    return Point(task.where.lat, task.where.lon, task.where.hae, 10.0, 10.0)


def desk_chat(text: str, now_ms: int, *, to_uid: str | None = None, to_callsign: str | None = None,
              to_group: str | None = None) -> CotEvent:
    """A GeoChat message from the task desk to one uid, callsign or group."""
    if to_group is not None:
        room = chat_id = to_group
        parent, dest = "TeamGroups", f"<dest group={quoteattr(to_group)}/>"
    else:
        chat_id = to_uid or to_callsign or ""
        room = to_callsign or chat_id
        parent = "RootContactGroup"
        dest = f"<dest uid={quoteattr(to_uid)}/>" if to_uid else f"<dest callsign={quoteattr(chat_id)}/>"
    message_id = str(uuid.uuid4())
    detail = (
        f"<__chat parent={quoteattr(parent)} groupOwner=\"false\" messageId={quoteattr(message_id)} "
        f"chatroom={quoteattr(room)} id={quoteattr(chat_id)} senderCallsign={quoteattr(DESK_CALLSIGN)}>"
        f"<chatgrp uid0={quoteattr(DESK_UID)} uid1={quoteattr(chat_id)} id={quoteattr(chat_id)}/></__chat>"
        f"<link uid={quoteattr(DESK_UID)} type=\"a-f-G-U-C\" relation=\"p-p\"/>"
        f"<remarks source={quoteattr('Rallypoint.Tasks')} time={quoteattr(format_time(now_ms))}>"
        f"{escape(text)}</remarks><marti>{dest}</marti>"
    )
    return make_event(uid=f"GeoChat.{DESK_UID}.{room}.{message_id}", type=CHAT_TYPE, how=_HOW, time=now_ms,
                      start=now_ms, stale=now_ms + CHAT_STALE_MS, point=_NOWHERE, detail_xml=detail.encode())


def task_chat(task: Task, now_ms: int) -> CotEvent:
    """The task in words, to its assignee, with how to answer."""
    a = task.assignee
    due = f" by {format_time(task.due_ms)[:16]}Z" if task.due_ms is not None else ""
    where = f" at {task.where.lat:.5f},{task.where.lon:.5f}" if task.where is not None else ""
    text = (f"Task {short_id(task)} from {task.creator}: {task.what}{where}{due}. "
            f"Reply ack, start, done or fail (add {short_id(task)} if you have several tasks).")
    match a.kind:
        case "group":
            return desk_chat(text, now_ms, to_group=a.group)
        case "uid":
            return desk_chat(text, now_ms, to_uid=a.uid)
        case _:
            return desk_chat(text, now_ms, to_callsign=a.callsign)


def is_to_desk(event: CotEvent) -> bool:
    """A GeoChat message addressed to the task desk (by uid, callsign or as a chat member)."""
    if event.type != CHAT_TYPE or event.detail.chat is None:
        return False
    chat = event.detail.chat
    if chat.members and chat.members[0] == DESK_UID:
        return False  # the desk's own message
    if chat.chat_id == DESK_UID or DESK_UID in chat.members[1:]:
        return True
    return any(d.uid == DESK_UID or d.callsign == DESK_CALLSIGN for d in event.detail.dests)


def chat_text(event: CotEvent) -> str:
    """The text (``<remarks>``) of a GeoChat message; empty if it has none."""
    if not event.detail.xml:
        return ""
    try:
        detail = parse_fragment(event.detail.xml, _LIMITS)
    except RemoteProtocolError:
        return ""
    remarks = detail.find("remarks")
    return (remarks.text or "").strip() if remarks is not None else ""


def read_reply(text: str) -> StatusRequest:
    """``done``, ``done 1a2b3c4d``, ``fail 1a2b3c4d road blocked``: the move a chat reply asks for."""
    words = text.split(maxsplit=2)
    if not words or words[0].lower().rstrip(".!") not in REPLY_WORDS:
        raise BadTaskCot("start the reply with ack, start, done or fail")
    state = REPLY_WORDS[words[0].lower().rstrip(".!")]
    ref = None
    note_words = words[1:]
    if note_words and _looks_like_ref(note_words[0]):
        ref = note_words[0].lower()
        note_words = note_words[1:]
    return StatusRequest(state=state, task_ref=ref, note=" ".join(note_words)[:MAX_NOTE])


def _looks_like_ref(word: str) -> bool:
    return 4 <= len(word) <= 36 and all(c in "0123456789abcdefABCDEF-" for c in word)


def read_status(event: CotEvent) -> StatusRequest:
    """The move a ``t-x-rp-task-s`` asks for; ``BadTaskCot`` when it is incomplete or names no known state."""
    try:
        detail = parse_fragment(event.detail.xml, _LIMITS) if event.detail.xml else None
    except RemoteProtocolError as exc:
        raise BadTaskCot(f"unreadable detail: {exc.reason}") from exc
    element = detail.find("__rallypoint_task_status") if detail is not None else None
    if element is None:
        raise BadTaskCot("no <__rallypoint_task_status> element")
    task_id = (element.get("id") or "").strip()
    state = (element.get("state") or "").strip().lower()
    if not task_id:
        raise BadTaskCot("the id attribute is missing")
    try:
        wanted = TaskState(state)
    except ValueError as exc:
        raise BadTaskCot(f"state must be one of {', '.join(s.value for s in TaskState)}") from exc
    return StatusRequest(state=wanted, task_ref=task_id, note=(element.get("note") or "")[:MAX_NOTE])
