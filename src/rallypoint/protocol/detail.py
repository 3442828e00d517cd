"""``<detail>``: the parsed views routing needs, and the rest kept as XML.

Used by the XML decoder, the protobuf decoder (after rebuilding the typed elements as XML) and
``make_event``, so every path fills :class:`~rallypoint.model.cot.Detail` the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

from lxml import etree

from rallypoint.model.cot import ChatInfo, Dest, Detail, EmergencyInfo
from rallypoint.model.exercise import EXERCISE_TAG, ExerciseMark

_CLOSE = b"</detail>"
_OPEN = b"<detail"
_OPEN_PLAIN = b"<detail>"


def build_detail(detail: etree._Element | None, source: bytes | None = None) -> Detail:
    """Views of a parsed ``<detail>`` element; removes ``<marti>`` from it and keeps the rest as XML.

    Only the first ``contact``, ``__group``, ``__chat``, ``emergency``, ``status``, ``track``,
    ``takv`` and ``__rallypoint_exercise`` count; ``link`` views come from the first ``<link>`` that
    has a ``uid`` (drawings carry uid-less ``<link point=...>`` vertices first). A malformed ``battery``, ``speed`` or
    ``course`` leaves that view empty rather than rejecting the event: they are informational.

    ``source`` is the document ``detail`` was parsed from, if it is at hand: when it provably
    holds the children exactly as :func:`serialize_children` would write them, they are sliced
    from it instead of being serialized again.
    """
    if detail is None:
        return Detail()
    # The first element of each tag, in one pass; <marti> and <link> are handled apart.
    first: dict[str, etree._Element] = {}
    link: etree._Element | None = None
    marti: list[etree._Element] = []
    for child in detail:
        tag = child.tag
        if tag == "marti":
            marti.append(child)
        elif tag == "link":
            if link is None and child.get("uid") is not None:
                link = child
        elif tag not in first:
            first[tag] = child
    chat = first.get("__chat")
    chatgrp = chat.find("chatgrp") if chat is not None else None
    dests: list[Dest] = []
    xml = None
    if marti:
        for element in marti:
            dests.extend(_dests(element))
            detail.remove(element)
    elif source is not None:
        xml = inner_from_source(detail, source)
    return detail_from_views(
        first,
        link,
        chatgrp.attrib if chatgrp is not None else None,
        serialize_children(detail) if xml is None else xml,
        marti=bool(marti),
        dests=tuple(dests),
    )


class Attributes(Protocol):
    """What the views read of an element: its attributes by name (an lxml element or a dict)."""

    def get(self, key: str, /) -> str | None:
        """The attribute's value, ``None`` when absent."""


def detail_from_views(
    first: Mapping[str, Attributes],
    link: Attributes | None,
    chatgrp: Mapping[str, str] | None,
    xml: bytes,
    *,
    marti: bool = False,
    dests: tuple[Dest, ...] = (),
) -> Detail:
    """The :class:`Detail` of the elements :func:`build_detail` picks out of ``<detail>``.

    ``first`` maps a tag to the attributes of the first child of that tag, ``link`` is the first
    ``<link>`` with a ``uid``, ``chatgrp`` the attributes of the ``<chatgrp>`` inside the first
    ``<__chat>``, and ``xml`` the children as kept. Every decoder fills the views through here.
    """
    get = first.get
    callsign = endpoint = group_name = group_role = platform = None
    battery: int | None = None
    speed: float | None = None
    course: float | None = None
    if (el := get("contact")) is not None:
        callsign, endpoint = el.get("callsign"), el.get("endpoint")
    if (el := get("__group")) is not None:
        group_name, group_role = el.get("name"), el.get("role")
    chat = _chat(el, chatgrp) if (el := get("__chat")) is not None else None
    emergency = None
    if (el := get("emergency")) is not None:
        emergency = EmergencyInfo(type=el.get("type"), cancel=(el.get("cancel") or "").strip().lower() == "true")
    if (el := get("status")) is not None:
        battery = _int(el.get("battery"))
    if (el := get("track")) is not None:
        speed, course = _float(el.get("speed")), _float(el.get("course"))
    takv = (el := get("takv")) is not None
    if el is not None:
        platform = el.get("platform")
    exercise = None
    if (el := get(EXERCISE_TAG)) is not None:
        exercise = ExerciseMark(id=el.get("id"), unit=el.get("unit"), inject=el.get("inject"), kind=el.get("kind"))
    return Detail(
        xml=xml,
        callsign=callsign,
        endpoint=endpoint,
        group_name=group_name,
        group_role=group_role,
        has_marti=marti,
        dests=dests,
        chat=chat,
        link_uid=link.get("uid") if link is not None else None,
        link_type=link.get("type") if link is not None else None,
        link_relation=link.get("relation") if link is not None else None,
        emergency=emergency,
        battery=battery,
        speed=speed,
        course=course,
        platform=platform,
        takv=takv,
        exercise=exercise,
    )


def serialize_children(detail: etree._Element) -> bytes:
    """The UTF-8 XML of everything inside ``detail``, without the wrapper tags."""
    if len(detail) == 0 and not (detail.text and detail.text.strip()):
        return b""
    # One serializer call for the whole element is much cheaper than one per child.
    whole: bytes = etree.tostring(detail, encoding="utf-8", xml_declaration=False, with_tail=False)
    start = whole.find(b">") + 1
    if b"xmlns" in whole[:start] or not whole.endswith(_CLOSE):
        # Namespace declarations inherited from <event> would be lost with the wrapper:
        # serialize each child, which declares what it uses.
        return b"".join(
            etree.tostring(child, encoding="utf-8", xml_declaration=False, with_tail=False)
            for child in detail
        )
    return whole[start : -len(_CLOSE)].strip()


def _dests(marti: etree._Element) -> list[Dest]:
    return [
        Dest(
            callsign=dest.get("callsign"),
            uid=dest.get("uid"),
            group=dest.get("group"),
            mission=dest.get("mission"),
        )
        for dest in marti
        if dest.tag == "dest"
    ]


def _chat(element: Attributes, chatgrp: Mapping[str, str] | None) -> ChatInfo:
    members: list[tuple[int, str]] = []
    if chatgrp is not None:
        for key, value in chatgrp.items():
            if isinstance(key, str) and key.startswith("uid") and key[3:].isdigit():
                members.append((int(key[3:]), str(value)))
        members.sort()
    return ChatInfo(
        chatroom=element.get("chatroom") or "",
        chat_id=element.get("id") or "",
        parent=element.get("parent"),
        sender_callsign=element.get("senderCallsign"),
        group_owner=(element.get("groupOwner") or "").strip().lower() == "true",
        members=tuple(uid for _, uid in members),
    )


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    return int(text)


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def inner_from_source(detail: etree._Element, source: bytes) -> bytes | None:
    """The children of ``detail`` sliced from ``source``, or ``None`` when that is not safe.

    ``source`` must be the document ``detail`` (a direct child of the root) was parsed from by
    a parser that removes comments. The slice is the same XML as :func:`serialize_children`
    gives (same elements, attributes and text once parsed) but keeps the sender's spelling:
    quotes, ``<a/>`` or ``<a></a>``, character references. ``None`` (serialize instead) unless
    ``<detail>`` is written plainly exactly once, with no comment, CDATA or namespace anywhere.
    """
    if len(detail) == 0 and not (detail.text and detail.text.strip()):
        return b""
    # No "!" means no comment or CDATA, so every "<" starts a tag and a unique "<detail" is
    # this element's start tag, and the "</detail>" after it is its end tag.
    if b"!" in source or b"xmlns" in source:
        return None
    start = source.find(_OPEN)
    if start < 0 or source[start + len(_OPEN) : start + len(_OPEN_PLAIN)] != b">":
        return None
    begin = start + len(_OPEN_PLAIN)
    if source.find(_OPEN, begin) >= 0:
        return None
    end = source.rfind(_CLOSE, begin)
    if end < 0:
        return None
    return source[begin:end].strip()
