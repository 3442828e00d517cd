"""Mission API JSON in TAK Server's shapes (what ATAK's and WinTAK's Data Sync parse)."""

from __future__ import annotations

from typing import Any

from rallypoint.clock import ms_to_datetime
from rallypoint.model.mission import Mission, MissionChange, MissionContent, MissionItem, Role, Subscription

API_VERSION = "3"
MISSION_TYPE = "Mission"
SUBSCRIPTION_TYPE = "com.bbn.marti.sync.model.MissionSubscription"
CHANGE_TYPE = "MissionChange"


def iso(ms: int) -> str:
    """``2024-05-01T12:00:00.000Z``, as TAK Server writes times."""
    return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def envelope(kind: str, data: Any, node_id: str) -> dict[str, Any]:
    """The ``ApiResponse`` wrapper every Marti JSON answer uses."""
    return {"version": API_VERSION, "type": kind, "data": data, "nodeId": node_id}


def role_json(role: Role) -> dict[str, Any]:
    """``{"type": "MISSION_SUBSCRIBER", "permissions": [...]}``."""
    return {"type": role.value, "permissions": [p.value for p in role.permissions]}


def content_json(c: MissionContent) -> dict[str, Any]:
    """One entry of a mission's ``contents``."""
    return {
        "data": {
            "keywords": list(c.keywords),
            "mimeType": c.mime_type,
            "name": c.name or c.hash,
            "submissionTime": iso(c.timestamp),
            "submitter": c.submitter,
            "uid": c.hash,
            "creatorUid": c.creator_uid,
            "hash": c.hash,
            "size": c.size,
            "expiration": -1,
        },
        "timestamp": iso(c.timestamp),
        "creatorUid": c.creator_uid,
    }


def item_json(item: MissionItem) -> dict[str, Any]:
    """One entry of a mission's ``uids``."""
    return {
        "data": item.uid,
        "timestamp": iso(item.timestamp),
        "creatorUid": item.creator_uid,
        "details": {"type": item.cot_type, "callsign": item.callsign, "iconsetPath": ""},
    }


def mission_json(
    m: Mission,
    *,
    contents: list[MissionContent] | None = None,
    items: list[MissionItem] | None = None,
    token: str | None = None,
    role: Role | None = None,
) -> dict[str, Any]:
    """A mission; ``token`` and ``role`` are added for the caller's own view when given."""
    doc: dict[str, Any] = {
        "name": m.name,
        "description": m.description,
        "chatRoom": m.chat_room,
        "baseLayer": "",
        "bbox": "",
        "path": "",
        "classification": m.classification,
        "tool": m.tool,
        "keywords": list(m.keywords),
        "creatorUid": m.creator_uid,
        "createTime": iso(m.create_time),
        "externalData": [],
        "feeds": [],
        "mapLayers": [],
        "defaultRole": role_json(m.default_role),
        "ownerRole": role_json(Role.OWNER),
        "inviteOnly": m.invite_only,
        "expiration": m.expiration,
        "guid": m.guid,
        "groups": sorted(m.groups),
        "uids": [item_json(i) for i in items or ()],
        "contents": [content_json(c) for c in contents or ()],
        "passwordProtected": m.password_protected,
    }
    if token is not None:
        doc["token"] = token
    if role is not None:
        doc["role"] = role_json(role)
    return doc


def subscription_json(sub: Subscription, *, mission: dict[str, Any] | None = None,
                      with_token: bool = True) -> dict[str, Any]:
    """A ``MissionSubscription``; the token only goes to the subscriber itself."""
    doc: dict[str, Any] = {
        "clientUid": sub.client_uid,
        "username": sub.principal or "anonymous",
        "createTime": iso(sub.create_time),
        "role": role_json(sub.role),
    }
    if with_token:
        doc["token"] = sub.token
    if mission is not None:
        doc["mission"] = mission
    return doc


def change_json(c: MissionChange, contents: dict[str, MissionContent] | None = None) -> dict[str, Any]:
    """One ``MissionChange`` of the change log."""
    doc: dict[str, Any] = {
        "isFederatedChange": False,
        "type": c.type.value,
        "missionName": c.mission,
        "timestamp": iso(c.timestamp),
        "creatorUid": c.creator_uid,
        "serverTime": iso(c.timestamp),
    }
    if c.content_hash is not None:
        found = (contents or {}).get(c.content_hash)
        doc["contentResource"] = (
            content_json(found)["data"] if found is not None else {"hash": c.content_hash, "uid": c.content_hash}
        )
    if c.content_uid is not None:
        doc["contentUid"] = c.content_uid
    if c.details:
        doc["details"] = c.details
    return doc
