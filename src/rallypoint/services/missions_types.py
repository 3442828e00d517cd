"""The values the mission service takes and answers: create requests, mission details, content metadata."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from rallypoint.model.mission import Mission, MissionContent, MissionItem, Role
from rallypoint.routing.envelope import Envelope


class ContentMeta(msgspec.Struct, frozen=True):
    """What is known about a stored data package, to describe it inside a mission."""

    name: str = ""
    size: int = 0
    mime_type: str = "application/octet-stream"
    submitter: str = ""
    keywords: tuple[str, ...] = ()
    # The device uid the upload named (``creatorUid``), "" when it named none.
    creator_uid: str = ""


class MissionDetails(msgspec.Struct, frozen=True):
    """A mission with its contents, uids and the caller's role in it."""

    mission: Mission
    contents: list[MissionContent]
    items: list[MissionItem]
    role: Role


class CreateRequest(msgspec.Struct, frozen=True):
    """Parameters of a new mission (``groups`` empty means the creator's write groups)."""

    name: str
    groups: tuple[str, ...] = ()
    description: str = ""
    tool: str = "public"
    keywords: tuple[str, ...] = ()
    password: str | None = None
    default_role: Role = Role.SUBSCRIBER
    invite_only: bool = False
    expiration: int = -1
    chat_room: str = ""
    classification: str = ""


# Looks up the latest CoT of a uid (the live picture), for snapshots of uids added over HTTP.
Snapshot = Callable[[str], Envelope | None]
# Looks up a stored data package's metadata by SHA-256, for a caller reading these groups: None when
# the package is not stored or the caller may not read it.
Describe = Callable[[str, frozenset[str]], Awaitable[ContentMeta | None]]
