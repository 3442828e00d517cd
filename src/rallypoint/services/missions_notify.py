"""The ``t-x-m-*`` CoT notices a server sends mission subscribers (Data Sync listens for these).

Shape as ATAK's Data Sync expects it::

    <detail><mission type="CHANGE" tool="public" name="NAME" guid="..." authorUid="...">
      <MissionChanges><MissionChange>...</MissionChange></MissionChanges></mission></detail>
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

from rallypoint.model.cot import CotEvent, Point
from rallypoint.model.mission import Mission, MissionChange, MissionContent, Role
from rallypoint.protocol.timefmt import format_time
from rallypoint.protocol.xml_codec import make_event

CREATED = "t-x-m-n"
DELETED = "t-x-m-d"
INVITED = "t-x-m-i"
ROLE_CHANGED = "t-x-m-r"
CHANGED = "t-x-m-c"

_HOW = "h-g-i-g-o"
_ORIGIN = Point(0.0, 0.0, 0.0, 9999999.0, 9999999.0)
_STALE_MS = 20_000


def mission_notice(
    cot_type: str,
    kind: str,
    mission: Mission,
    *,
    author_uid: str,
    now_ms: int,
    changes: Iterable[MissionChange] = (),
    contents: dict[str, MissionContent] | None = None,
    role: Role | None = None,
    token: str | None = None,
) -> CotEvent:
    """One notice: ``kind`` is CHANGE, CREATE, DELETE, INVITE or ROLE.

    ``contents`` gives the metadata of hashes named by ``changes`` (as a ``contentResource``).
    """
    attrs = (
        f"type={quoteattr(kind)} tool={quoteattr(mission.tool)} name={quoteattr(mission.name)} "
        f"guid={quoteattr(mission.guid)} authorUid={quoteattr(author_uid)}"
    )
    if token is not None:
        attrs += f" token={quoteattr(token)}"
    inner = ""
    if role is not None:
        perms = "".join(f"<permission>{p.value}</permission>" for p in role.permissions)
        inner += f"<role type={quoteattr(role.value)}><permissions>{perms}</permissions></role>"
    listed = [_change_xml(c, (contents or {}).get(c.content_hash or "")) for c in changes]
    if listed:
        inner += "<MissionChanges>" + "".join(listed) + "</MissionChanges>"
    detail = f"<mission {attrs}>{inner}</mission>"
    return make_event(
        uid=str(uuid.uuid4()),
        type=cot_type,
        how=_HOW,
        time=now_ms,
        start=now_ms,
        stale=now_ms + _STALE_MS,
        point=_ORIGIN,
        detail_xml=detail.encode(),
    )


def _change_xml(change: MissionChange, content: MissionContent | None) -> str:
    parts = ["<MissionChange>"]
    if change.content_hash is not None:
        parts.append(_resource_xml(change.content_hash, content))
    if change.content_uid is not None:
        parts.append(f"<contentUid>{escape(change.content_uid)}</contentUid>")
    parts += [
        f"<creatorUid>{escape(change.creator_uid)}</creatorUid>",
        "<isFederatedChange>false</isFederatedChange>",
        f"<missionName>{escape(change.mission)}</missionName>",
        f"<timestamp>{format_time(change.timestamp)}</timestamp>",
        f"<type>{change.type.value}</type>",
    ]
    if change.details:
        parts.append(f"<details>{escape(change.details)}</details>")
    parts.append("</MissionChange>")
    return "".join(parts)


def _resource_xml(content_hash: str, content: MissionContent | None) -> str:
    if content is None:
        return f"<contentResource><hash>{escape(content_hash)}</hash></contentResource>"
    keywords = "".join(f"<keywords>{escape(k)}</keywords>" for k in content.keywords)
    return (
        "<contentResource>"
        f"<creatorUid>{escape(content.creator_uid)}</creatorUid>"
        f"<hash>{escape(content.hash)}</hash>{keywords}"
        f"<mimeType>{escape(content.mime_type)}</mimeType>"
        f"<name>{escape(content.name or content.hash)}</name>"
        f"<size>{content.size}</size>"
        f"<submissionTime>{format_time(content.timestamp)}</submissionTime>"
        f"<submitter>{escape(content.submitter)}</submitter>"
        f"<uid>{escape(content.hash)}</uid>"
        "</contentResource>"
    )
