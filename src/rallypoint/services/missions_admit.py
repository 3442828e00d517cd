"""Who makes a mission and who joins one: a create request checked into a new mission, and the role
a subscriber joins with (ownership, invitation, or the mission's default behind its password).

Pure rules over the request, the caller and the mission; :class:`~rallypoint.services.missions.MissionService`
applies them under its lock and writes the result to the store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import msgspec

from rallypoint.model.mission import CreateRequest, Mission, Role
from rallypoint.services.missions_access import (
    Caller,
    MissionForbidden,
    check_keyword,
    check_name,
    check_text,
    is_creator,
)


class CheckedCreate(msgspec.Struct, frozen=True):
    """A create request's name, groups and keywords once checked."""

    name: str
    groups: frozenset[str]
    keywords: tuple[str, ...]


def check_create(caller: Caller, req: CreateRequest) -> CheckedCreate:
    """Check a create request; ``InvalidMissionRequest`` or ``MissionForbidden`` when it may not be made.

    The mission goes in the groups asked for, each one the creator may write, or else in every group
    the creator writes.
    """
    name = check_name(req.name)
    for field, text in (
        ("description", req.description),
        ("tool", req.tool),
        ("chatRoom", req.chat_room),
        ("classification", req.classification),
    ):
        check_text(field, text)
    keywords = tuple(check_keyword(k) for k in req.keywords)
    groups = frozenset(g for g in req.groups if g)
    if groups and not groups <= caller.write_groups:
        raise MissionForbidden("a mission can only be put in groups the creator may write")
    groups = groups or caller.write_groups
    if not groups:
        raise MissionForbidden("the creator writes no group")
    return CheckedCreate(name=name, groups=groups, keywords=keywords)


def new_mission(
    caller: Caller, req: CreateRequest, checked: CheckedCreate, *, now_ms: int, hash_secret: Callable[[str], str]
) -> Mission:
    """The mission ``caller`` creates (a fresh guid; the password kept only as its hash)."""
    return Mission(
        name=checked.name,
        guid=str(uuid.uuid4()),
        create_time=now_ms,
        creator_uid=caller.client_uid,
        creator_principal=caller.principal,
        groups=checked.groups,
        description=req.description,
        tool=req.tool or "public",
        keywords=checked.keywords,
        password_hash=hash_secret(req.password) if req.password else None,
        default_role=req.default_role,
        invite_only=req.invite_only,
        expiration=req.expiration,
        chat_room=req.chat_room,
        classification=req.classification,
    )


def joining_role(
    mission: Mission,
    caller: Caller,
    invited: Role | None,
    password: str | None,
    check_secret: Callable[[str, str], bool],
) -> Role:
    """The role ``caller`` subscribes with; ``MissionForbidden`` when it may not join.

    Admins and the creator own it; an invitee gets the invitation's role; anyone else gets the
    default role, unless the mission is invite-only or its password is not given.
    """
    if caller.admin or is_creator(mission, caller):
        return Role.OWNER
    if invited is not None:
        return invited
    if mission.invite_only:
        raise MissionForbidden("mission is invite-only")
    if mission.password_hash is not None and not (password and check_secret(mission.password_hash, password)):
        raise MissionForbidden("wrong mission password")
    return mission.default_role
