"""``<detail>``: the parsed views routing needs, and the rest kept as XML.

Used by the XML decoder, the protobuf decoder (after rebuilding the typed elements as XML) and
``make_event``, so every path fills :class:`~rallypoint.model.cot.Detail` the same way.
"""

from __future__ import annotations

import math

from lxml import etree

from rallypoint.model.cot import ChatInfo, Dest, Detail, EmergencyInfo

_CLOSE = b"</detail>"


def build_detail(detail: etree._Element | None) -> Detail:
    """Views of a parsed ``<detail>`` element; removes ``<marti>`` from it and serializes the rest.

    Only the first ``contact``, ``__group``, ``__chat``, ``emergency``, ``status``, ``track`` and
    ``takv`` count; ``link`` views come from the first ``<link>`` that has a ``uid`` (drawings
    carry uid-less ``<link point=...>`` vertices first). A malformed ``battery``, ``speed`` or
    ``course`` leaves that view empty rather than rejecting the event: they are informational.
    """
    if detail is None:
        return Detail()
    callsign = endpoint = group_name = group_role = None
    link_uid = link_type = link_relation = platform = None
    battery: int | None = None
    speed: float | None = None
    course: float | None = None
    chat: ChatInfo | None = None
    emergency: EmergencyInfo | None = None
    seen: set[object] = set()
    dests: list[Dest] = []
    marti: list[etree._Element] = []
    for child in detail:
        tag = child.tag
        if tag == "marti":
            marti.append(child)
            dests.extend(_dests(child))
            continue
        if tag == "link":
            if link_uid is None and (uid := child.get("uid")) is not None:
                link_uid, link_type, link_relation = uid, child.get("type"), child.get("relation")
            continue
        if tag in seen:
            continue
        seen.add(tag)
        match tag:
            case "contact":
                callsign, endpoint = child.get("callsign"), child.get("endpoint")
            case "__group":
                group_name, group_role = child.get("name"), child.get("role")
            case "__chat":
                chat = _chat(child)
            case "emergency":
                emergency = EmergencyInfo(
                    type=child.get("type"), cancel=(child.get("cancel") or "").strip().lower() == "true"
                )
            case "status":
                battery = _int(child.get("battery"))
            case "track":
                speed, course = _float(child.get("speed")), _float(child.get("course"))
            case "takv":
                platform = child.get("platform")
            case _:
                pass
    for element in marti:
        detail.remove(element)
    return Detail(
        xml=serialize_children(detail),
        callsign=callsign,
        endpoint=endpoint,
        group_name=group_name,
        group_role=group_role,
        has_marti=bool(marti),
        dests=tuple(dests),
        chat=chat,
        link_uid=link_uid,
        link_type=link_type,
        link_relation=link_relation,
        emergency=emergency,
        battery=battery,
        speed=speed,
        course=course,
        platform=platform,
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


def _chat(element: etree._Element) -> ChatInfo:
    members: list[tuple[int, str]] = []
    chatgrp = element.find("chatgrp")
    if chatgrp is not None:
        for key, value in chatgrp.attrib.items():
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
