"""What a stored event's XML says about exercises, tasks, designations and emergencies.

Read with byte patterns on the stored XML rather than a parser: the report reads up to millions of
rows, the server validated each one when it arrived, and these elements are flat (attributes only).
Attribute values are unescaped (``&lt;`` etc.) so they compare equal to what the sender meant.
"""

# mypy: disallow-untyped-defs, disallow-any-generics, warn-return-any

from __future__ import annotations

import re
from html import unescape

import msgspec

EXERCISE_TAG = b"__rallypoint_exercise"
MARKER_TYPE = "t-x-rp-exercise"
TASK_TYPE = "t-x-rp-task"
TASK_STATUS_TYPE = "t-x-rp-task-s"
DESIGNATION_TAG = b"__rallypoint_designation"

_ATTR = re.compile(rb"""([A-Za-z_][\w.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_OPEX = re.compile(rb"""\sopex\s*=\s*["']e-([^"']*)["']""")
# The note ``rallypoint exercise run`` puts on the record of an API inject it carried out.
_NOTE_REF = re.compile(
    rb"<remarks[^>]*>\s*(?:task|designation) ([A-Za-z0-9_-]{1,64}) (?:assigned|proposed)\s*</remarks>")


def _element(xml: bytes, tag: bytes) -> dict[str, str] | None:
    """The attributes of the first ``<tag .../>`` in ``xml`` (None when absent)."""
    at = xml.find(b"<" + tag)
    if at < 0:
        return None
    end = xml.find(b">", at)
    if end < 0:
        return None
    head = xml[at + len(tag) + 1:end]
    if head[:1] not in (b"", b" ", b"\t", b"\n", b"\r", b"/"):
        return None  # a longer tag name sharing the prefix
    return {m.group(1).decode("utf-8", "replace"): _text(m.group(2) if m.group(2) is not None else m.group(3))
            for m in _ATTR.finditer(head)}


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return unescape(text) if "&" in text else text


class ExerciseMark(msgspec.Struct, frozen=True):
    """The exercise marker of an event: its exercise id, scenario unit and, on injects, inject id and kind."""

    exercise: str
    unit: str = ""
    inject: str = ""
    kind: str = ""
    # The id of what an API-driven inject created (a task, a designation): the marker's ``ref``, else
    # the runner's note ``task ID assigned`` / ``designation ID proposed`` in the record's remarks.
    ref: str = ""


def exercise_mark(xml: bytes) -> ExerciseMark | None:
    """The event's exercise marker: the detail element, else the ``opex="e-ID"`` attribute; None if neither."""
    if EXERCISE_TAG in xml:
        attrs = _element(xml, EXERCISE_TAG)
        if attrs is not None and attrs.get("id"):
            ref = attrs.get("ref", "")
            if not ref and attrs.get("inject") and (note := _NOTE_REF.search(xml)):
                ref = note.group(1).decode()
            return ExerciseMark(attrs["id"], attrs.get("unit", ""), attrs.get("inject", ""), attrs.get("kind", ""),
                                ref)
    if b"opex" in xml and (m := _OPEX.search(xml[:xml.find(b">") + 1])):
        return ExerciseMark(_text(m.group(1)))
    return None


def task_state(xml: bytes) -> tuple[str, str] | None:
    """``(task id, state)`` of a ``t-x-rp-task`` or ``t-x-rp-task-s`` event."""
    for tag in (b"__rallypoint_task_status", b"__rallypoint_task"):
        attrs = _element(xml, tag)
        if attrs is not None and attrs.get("id") and attrs.get("state"):
            return attrs["id"], attrs["state"]
    return None


def task_assignee(xml: bytes) -> str:
    """The assignee named by a ``t-x-rp-task`` event (uid, callsign or group name), or ``""``."""
    attrs = _element(xml, b"__rallypoint_task") or {}
    for key in ("assignee_uid", "assignee_callsign", "assignee_group"):
        if attrs.get(key):
            return attrs[key]
    return ""


def designation_state(xml: bytes) -> tuple[str, str] | None:
    """``(designation id, state)`` of a designation event."""
    attrs = _element(xml, DESIGNATION_TAG)
    if attrs is not None and attrs.get("id") and attrs.get("state"):
        return attrs["id"], attrs["state"]
    return None


def link_uid(xml: bytes) -> str:
    """The uid of the first ``<link uid=...>`` (an emergency names its sender's device with it), or ``""``."""
    attrs = _element(xml, b"link")
    return (attrs or {}).get("uid", "")
