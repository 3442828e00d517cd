"""Tables of the missions database, their column lists, and the mapping of a mission to its row."""

from __future__ import annotations

import json

from rallypoint.model.mission import Mission, Role

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE missions (
        guid              TEXT PRIMARY KEY,
        name              TEXT NOT NULL UNIQUE,
        create_time       INTEGER NOT NULL,
        creator_uid       TEXT NOT NULL,
        creator_principal TEXT,
        groups            TEXT NOT NULL,
        description       TEXT NOT NULL,
        tool              TEXT NOT NULL,
        keywords          TEXT NOT NULL,
        password_hash     TEXT,
        default_role      TEXT NOT NULL,
        invite_only       INTEGER NOT NULL,
        expiration        INTEGER NOT NULL,
        chat_room         TEXT NOT NULL,
        classification    TEXT NOT NULL
    );
    CREATE TABLE mission_contents (
        guid        TEXT NOT NULL REFERENCES missions(guid) ON DELETE CASCADE,
        hash        TEXT NOT NULL,
        creator_uid TEXT NOT NULL,
        timestamp   INTEGER NOT NULL,
        name        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        mime_type   TEXT NOT NULL,
        submitter   TEXT NOT NULL,
        keywords    TEXT NOT NULL,
        PRIMARY KEY (guid, hash)
    );
    CREATE TABLE mission_uids (
        guid        TEXT NOT NULL REFERENCES missions(guid) ON DELETE CASCADE,
        uid         TEXT NOT NULL,
        creator_uid TEXT NOT NULL,
        timestamp   INTEGER NOT NULL,
        cot_type    TEXT NOT NULL,
        callsign    TEXT NOT NULL,
        xml         BLOB NOT NULL,
        PRIMARY KEY (guid, uid)
    );
    CREATE TABLE mission_subscriptions (
        guid        TEXT NOT NULL REFERENCES missions(guid) ON DELETE CASCADE,
        client_uid  TEXT NOT NULL,
        principal   TEXT,
        token       TEXT NOT NULL UNIQUE,
        role        TEXT NOT NULL,
        create_time INTEGER NOT NULL,
        PRIMARY KEY (guid, client_uid)
    );
    CREATE TABLE mission_invitations (
        guid        TEXT NOT NULL REFERENCES missions(guid) ON DELETE CASCADE,
        type        TEXT NOT NULL,
        invitee     TEXT NOT NULL,
        creator_uid TEXT NOT NULL,
        role        TEXT NOT NULL,
        create_time INTEGER NOT NULL,
        PRIMARY KEY (guid, type, invitee)
    );
    CREATE TABLE mission_changes (
        id           INTEGER PRIMARY KEY,
        guid         TEXT NOT NULL,
        mission      TEXT NOT NULL,
        type         TEXT NOT NULL,
        creator_uid  TEXT NOT NULL,
        timestamp    INTEGER NOT NULL,
        content_hash TEXT,
        content_uid  TEXT,
        details      TEXT NOT NULL
    );
    CREATE INDEX mission_changes_guid_time ON mission_changes(guid, timestamp);
    """,
    # 2: operation plans, versioned (storage/sqlite/plans.py); a deleted mission takes its plan along.
    """
    CREATE TABLE plan_versions (
        guid          TEXT NOT NULL REFERENCES missions(guid) ON DELETE CASCADE,
        version       INTEGER NOT NULL,
        author        TEXT NOT NULL,
        time_ms       INTEGER NOT NULL,
        reason        TEXT NOT NULL,
        reverted_from INTEGER,
        plan          BLOB NOT NULL,
        PRIMARY KEY (guid, version)
    );
    """,
)

MISSION_COLUMNS = (
    "name, guid, create_time, creator_uid, creator_principal, groups, description, tool, keywords, "
    "password_hash, default_role, invite_only, expiration, chat_room, classification"
)
CONTENT_COLUMNS = "hash, creator_uid, timestamp, name, size, mime_type, submitter, keywords"
ITEM_COLUMNS = "uid, creator_uid, timestamp, cot_type, callsign, xml"
SUB_COLUMNS = "client_uid, principal, token, role, create_time"


def mission_row(m: Mission) -> tuple[object, ...]:
    """A mission as the values of ``MISSION_COLUMNS``."""
    return (
        m.name, m.guid, m.create_time, m.creator_uid, m.creator_principal, json.dumps(sorted(m.groups)),
        m.description, m.tool, json.dumps(list(m.keywords)), m.password_hash, m.default_role.value,
        int(m.invite_only), m.expiration, m.chat_room, m.classification,
    )


def mission_of(row: tuple[object, ...]) -> Mission:
    """The mission stored in a row of ``MISSION_COLUMNS``."""
    (name, guid, create_time, creator_uid, principal, groups, description, tool, keywords,
     password_hash, default_role, invite_only, expiration, chat_room, classification) = row
    return Mission(
        name=str(name), guid=str(guid), create_time=int(create_time),  # type: ignore[call-overload]
        creator_uid=str(creator_uid), creator_principal=None if principal is None else str(principal),
        groups=frozenset(json.loads(str(groups))), description=str(description), tool=str(tool),
        keywords=tuple(json.loads(str(keywords))),
        password_hash=None if password_hash is None else str(password_hash),
        default_role=Role(str(default_role)), invite_only=bool(invite_only),
        expiration=int(expiration),  # type: ignore[call-overload]
        chat_room=str(chat_room), classification=str(classification),
    )
