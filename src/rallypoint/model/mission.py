"""Data Sync missions: named, group-scoped collections of data packages and CoT uids.

Names follow TAK Server's Mission API so the JSON and CoT built from these read the way ATAK and
WinTAK expect (roles ``MISSION_OWNER`` / ``MISSION_SUBSCRIBER`` / ``MISSION_READONLY_SUBSCRIBER``,
change types ``CREATE_MISSION`` / ``ADD_CONTENT`` ...). Times are epoch milliseconds (UTC).
"""

from __future__ import annotations

import enum

import msgspec


class Permission(enum.StrEnum):
    """What a mission role allows."""

    READ = "MISSION_READ"
    WRITE = "MISSION_WRITE"
    DELETE = "MISSION_DELETE"
    SET_ROLE = "MISSION_SET_ROLE"
    SET_PASSWORD = "MISSION_SET_PASSWORD"
    UPDATE_GROUPS = "MISSION_UPDATE_GROUPS"
    MANAGE_FEEDS = "MISSION_MANAGE_FEEDS"
    MANAGE_LAYERS = "MISSION_MANAGE_LAYERS"


class Role(enum.StrEnum):
    """A subscriber's role in one mission."""

    OWNER = "MISSION_OWNER"
    SUBSCRIBER = "MISSION_SUBSCRIBER"
    READONLY = "MISSION_READONLY_SUBSCRIBER"

    @property
    def permissions(self) -> tuple[Permission, ...]:
        """The permissions of this role, in TAK Server's order."""
        match self:
            case Role.OWNER:
                return tuple(Permission)
            case Role.SUBSCRIBER:
                return (Permission.READ, Permission.WRITE)
            case Role.READONLY:
                return (Permission.READ,)

    def allows(self, permission: Permission) -> bool:
        """True when this role carries ``permission``."""
        return permission in self.permissions


def parse_role(text: str) -> Role | None:
    """A role from its TAK name or a short alias (``OWNER``, ``SUBSCRIBER``, ``READONLY``); None if unknown."""
    key = text.strip().upper()
    for role in Role:
        if key == role.value or key == role.name:
            return role
    if key in ("READONLY_SUBSCRIBER", "MISSION_READONLY"):
        return Role.READONLY
    return None


class ChangeType(enum.StrEnum):
    """Entries of a mission's change log."""

    CREATE_MISSION = "CREATE_MISSION"
    DELETE_MISSION = "DELETE_MISSION"
    ADD_CONTENT = "ADD_CONTENT"
    REMOVE_CONTENT = "REMOVE_CONTENT"


class InviteType(enum.StrEnum):
    """Who an invitation names."""

    CLIENT_UID = "clientUid"
    CALLSIGN = "callsign"
    GROUP = "group"


class Mission(msgspec.Struct, frozen=True):
    """A mission's own attributes (contents, uids and subscriptions are stored beside it).

    ``groups`` scope visibility: only callers reading one of them know the mission exists.
    ``creator_principal`` is the certificate name of the creator (None when created anonymously).
    """

    name: str
    guid: str
    create_time: int
    creator_uid: str
    creator_principal: str | None
    groups: frozenset[str]
    description: str = ""
    tool: str = "public"
    keywords: tuple[str, ...] = ()
    password_hash: str | None = None
    default_role: Role = Role.SUBSCRIBER
    invite_only: bool = False
    expiration: int = -1
    chat_room: str = ""
    classification: str = ""

    @property
    def password_protected(self) -> bool:
        """True when subscribing needs a password."""
        return self.password_hash is not None


class MissionContent(msgspec.Struct, frozen=True):
    """A data package (by SHA-256) in a mission, with whatever metadata was known when it was added.

    ``creator_uid`` is the device uid the package's upload named, else the device that added it.
    """

    hash: str
    creator_uid: str
    timestamp: int
    name: str = ""
    size: int = 0
    mime_type: str = "application/octet-stream"
    submitter: str = ""
    keywords: tuple[str, ...] = ()


class MissionItem(msgspec.Struct, frozen=True):
    """A CoT uid in a mission and the latest XML recorded for it (empty when added by uid only)."""

    uid: str
    creator_uid: str
    timestamp: int
    cot_type: str = ""
    callsign: str = ""
    xml: bytes = b""


class Subscription(msgspec.Struct, frozen=True):
    """One client's subscription; ``token`` identifies it in later calls."""

    mission: str
    client_uid: str
    principal: str | None
    token: str
    role: Role
    create_time: int


class MissionChange(msgspec.Struct, frozen=True):
    """One change-log entry. ``content_hash`` or ``content_uid`` names what changed, if anything."""

    type: ChangeType
    mission: str
    creator_uid: str
    timestamp: int
    content_hash: str | None = None
    content_uid: str | None = None
    details: str = ""


class Invitation(msgspec.Struct, frozen=True):
    """An invitation to a mission, and the role the invitee gets on subscribing."""

    mission: str
    type: InviteType
    invitee: str
    creator_uid: str
    role: Role
    create_time: int


class MissionDetails(msgspec.Struct, frozen=True):
    """A mission with its contents, uids and the reader's role in it."""

    mission: Mission
    contents: list[MissionContent]
    items: list[MissionItem]
    role: Role


class CreateRequest(msgspec.Struct, frozen=True):
    """What a creator asks of a new mission; the rest of :class:`Mission` is set on creation.

    ``groups`` empty means the creator's write groups; ``password`` is the plain text (only its hash is kept).
    """

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
