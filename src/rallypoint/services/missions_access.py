"""Who may do what to a mission: callers, errors, and the role/group rules.

Two gates, both always applied:

* groups: a caller must read one of the mission's groups to know it exists at all; otherwise the
  mission is reported as not found (never "forbidden", which would confirm it exists);
* role: ``MISSION_OWNER`` may do everything, ``MISSION_SUBSCRIBER`` read and write contents,
  ``MISSION_READONLY_SUBSCRIBER`` only read. Writing needs a subscription whose role allows it (the
  creator and administrators act as owners without one); a group member that has not subscribed
  only reads. TAK Server grants such a caller the mission's default role, which lets anyone in the
  group change a mission they never joined; Data Sync clients subscribe before they write, so
  asking for the subscription costs them nothing.
"""

from __future__ import annotations

import re

import msgspec

from rallypoint.errors import RallypointError
from rallypoint.model.mission import Mission, Permission, Role, Subscription
from rallypoint.protocol.validate import is_xml_text

MAX_NAME_CHARS = 256
MAX_UID_CHARS = 256
MAX_KEYWORD_CHARS = 256
MAX_TEXT_CHARS = 4096
MAX_KEYWORDS = 64
_HASH = re.compile(r"[0-9a-fA-F]{64}")
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


class MissionError(RallypointError):
    """A refused mission request; ``status`` is the HTTP status that describes it."""

    status = 400


class MissionNotFound(MissionError):
    """No such mission, or one the caller may not see."""

    status = 404


class MissionForbidden(MissionError):
    """The caller sees the mission but its role does not allow the request."""

    status = 403


class ContentNotFound(MissionError):
    """A data package hash that is not stored, or that the caller may not read (indistinguishable)."""

    status = 404


class MissionConflict(MissionError):
    """The name is already taken."""

    status = 409


class InvalidMissionRequest(MissionError):
    """Malformed input."""

    status = 400


class Caller(msgspec.Struct, frozen=True):
    """Who makes a mission request.

    ``principal`` is the certificate (or account) name, None when anonymous; ``client_uid`` is the
    device uid the client named (``creatorUid``/``uid``/``clientUid``); ``token`` a subscription token
    it presented. ``uid_held`` is True when ``client_uid`` is proven to be the caller's: bound to
    its principal by the streaming identity binding (for anonymous callers, who share one identity:
    held by no principal). Invitations addressed to a uid or callsign are honoured only then.
    """

    principal: str | None
    write_groups: frozenset[str]
    read_groups: frozenset[str]
    client_uid: str = ""
    token: str | None = None
    admin: bool = False
    uid_held: bool = False

    def __post_init__(self) -> None:
        # The uid travels in mission notices (CoT XML) and change records.
        check_text("client uid", self.client_uid)

    def sees(self, mission: Mission) -> bool:
        """True when the caller reads one of the mission's groups."""
        return not self.read_groups.isdisjoint(mission.groups)


def is_creator(mission: Mission, caller: Caller) -> bool:
    """The creator: same principal, or for anonymous missions, anonymous with the creator's uid."""
    if mission.creator_principal is not None:
        return caller.principal == mission.creator_principal
    return caller.principal is None and bool(caller.client_uid) and caller.client_uid == mission.creator_uid


def own_subscription(subs: dict[str, Subscription], caller: Caller) -> Subscription | None:
    """The caller's subscription, found by token or client uid, and only if it belongs to its principal."""
    if caller.token:
        for sub in subs.values():
            if sub.token == caller.token and sub.principal == caller.principal:
                return sub
    if caller.client_uid:
        found = subs.get(caller.client_uid)
        if found is not None and found.principal == caller.principal:
            return found
    return None


def effective_role(mission: Mission, subs: dict[str, Subscription], caller: Caller) -> Role:
    """The role the caller acts with in a mission it can see."""
    if caller.admin or is_creator(mission, caller):
        return Role.OWNER
    sub = own_subscription(subs, caller)
    if sub is not None:
        return sub.role
    # Not subscribed: a group member may look, but changes need a subscription.
    return Role.READONLY


def require(mission: Mission, subs: dict[str, Subscription], caller: Caller, permission: Permission) -> Role:
    """The caller's role if it carries ``permission``; else ``MissionForbidden``."""
    role = effective_role(mission, subs, caller)
    if not role.allows(permission):
        raise MissionForbidden(f"{permission.value} needed in mission {mission.name!r}")
    return role


def check_name(name: str) -> str:
    """A usable mission name (case is kept and significant)."""
    if not name or not name.strip() or len(name) > MAX_NAME_CHARS or _BAD_NAME.search(name) or not is_xml_text(name):
        raise InvalidMissionRequest("invalid mission name")
    return name


def check_text(field: str, value: str) -> str:
    """Free text that mission notices (CoT XML) can carry, within the size of an attribute."""
    if len(value) > MAX_TEXT_CHARS or not is_xml_text(value):
        raise InvalidMissionRequest(f"{field}: too long or contains characters XML cannot carry")
    return value


def check_hash(value: str) -> str:
    """A SHA-256 content hash, lower-cased."""
    if not _HASH.fullmatch(value):
        raise InvalidMissionRequest("content hash must be 64 hexadecimal digits")
    return value.lower()


def check_keyword(value: object) -> str:
    """A mission keyword: a short line of text."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_KEYWORD_CHARS or any(
        ord(ch) < 0x20 for ch in value
    ) or not is_xml_text(value):
        raise InvalidMissionRequest("invalid keyword")
    return value


def check_uid(value: str) -> str:
    """A CoT uid as clients send them."""
    if not value or len(value) > MAX_UID_CHARS or any(ord(ch) < 0x20 for ch in value):
        raise InvalidMissionRequest("invalid uid")
    return value
