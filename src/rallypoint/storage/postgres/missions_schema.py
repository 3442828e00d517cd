"""Schema of the PostgreSQL mission store, and the mapping of a mission to its row.

Child rows (contents, uids, subscriptions, invitations) reference the mission and go with it; the
change log is keyed by guid without a foreign key, so a ``DELETE_MISSION`` entry outlives its
mission. Groups and keywords are ``text[]``.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from rallypoint.model.mission import Mission, Role
from rallypoint.storage.postgres.migrations import Migration

# pg_advisory_lock key for the mission store's migrations ("rallypoint missions", stable forever).
LOCK_KEY = 0x52505F4D49535349
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "missions",
        """
        CREATE TABLE missions (
            guid              text PRIMARY KEY,
            name              text NOT NULL UNIQUE,
            create_time       bigint NOT NULL,
            creator_uid       text NOT NULL,
            creator_principal text,
            groups            text[] NOT NULL,
            description       text NOT NULL,
            tool              text NOT NULL,
            keywords          text[] NOT NULL,
            password_hash     text,
            default_role      text NOT NULL,
            invite_only       boolean NOT NULL,
            expiration        bigint NOT NULL,
            chat_room         text NOT NULL,
            classification    text NOT NULL
        );
        CREATE TABLE mission_contents (
            guid        text NOT NULL REFERENCES missions (guid) ON DELETE CASCADE,
            hash        text NOT NULL,
            creator_uid text NOT NULL,
            timestamp   bigint NOT NULL,
            name        text NOT NULL,
            size        bigint NOT NULL,
            mime_type   text NOT NULL,
            submitter   text NOT NULL,
            keywords    text[] NOT NULL,
            PRIMARY KEY (guid, hash)
        );
        CREATE TABLE mission_uids (
            guid        text NOT NULL REFERENCES missions (guid) ON DELETE CASCADE,
            uid         text NOT NULL,
            creator_uid text NOT NULL,
            timestamp   bigint NOT NULL,
            cot_type    text NOT NULL,
            callsign    text NOT NULL,
            xml         bytea NOT NULL,
            PRIMARY KEY (guid, uid)
        );
        CREATE TABLE mission_subscriptions (
            guid        text NOT NULL REFERENCES missions (guid) ON DELETE CASCADE,
            client_uid  text NOT NULL,
            principal   text,
            token       text NOT NULL UNIQUE,
            role        text NOT NULL,
            create_time bigint NOT NULL,
            PRIMARY KEY (guid, client_uid)
        );
        CREATE TABLE mission_invitations (
            guid        text NOT NULL REFERENCES missions (guid) ON DELETE CASCADE,
            type        text NOT NULL,
            invitee     text NOT NULL,
            creator_uid text NOT NULL,
            role        text NOT NULL,
            create_time bigint NOT NULL,
            PRIMARY KEY (guid, type, invitee)
        );
        CREATE TABLE mission_changes (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            guid         text NOT NULL,
            mission      text NOT NULL,
            type         text NOT NULL,
            creator_uid  text NOT NULL,
            timestamp    bigint NOT NULL,
            content_hash text,
            content_uid  text,
            details      text NOT NULL
        );
        CREATE INDEX mission_changes_guid_time ON mission_changes (guid, timestamp);
        """,
    ),
    Migration(
        2,
        "plan versions",
        """
        CREATE TABLE plan_versions (
            guid          text NOT NULL REFERENCES missions (guid) ON DELETE CASCADE,
            version       integer NOT NULL,
            author        text NOT NULL,
            time_ms       bigint NOT NULL,
            reason        text NOT NULL,
            reverted_from integer,
            plan          bytea NOT NULL,
            PRIMARY KEY (guid, version)
        );
        """,
    ),
)

MISSION_COLUMNS = (
    "name, guid, create_time, creator_uid, creator_principal, groups, description, tool, keywords, "
    "password_hash, default_role, invite_only, expiration, chat_room, classification"
)
CONTENT_COLUMNS = "hash, creator_uid, timestamp, name, size, mime_type, submitter, keywords"
ITEM_COLUMNS = "uid, creator_uid, timestamp, cot_type, callsign, xml"


def mission_row(m: Mission) -> tuple[Any, ...]:
    """A mission as the values of ``MISSION_COLUMNS``."""
    return (
        m.name, m.guid, m.create_time, m.creator_uid, m.creator_principal, sorted(m.groups), m.description,
        m.tool, list(m.keywords), m.password_hash, m.default_role.value, m.invite_only, m.expiration,
        m.chat_room, m.classification,
    )


def mission_of(row: asyncpg.Record) -> Mission:
    """The mission stored in a row of ``MISSION_COLUMNS``."""
    return Mission(
        name=row["name"], guid=row["guid"], create_time=row["create_time"], creator_uid=row["creator_uid"],
        creator_principal=row["creator_principal"], groups=frozenset(row["groups"]),
        description=row["description"], tool=row["tool"], keywords=tuple(row["keywords"]),
        password_hash=row["password_hash"], default_role=Role(row["default_role"]),
        invite_only=row["invite_only"], expiration=row["expiration"], chat_room=row["chat_room"],
        classification=row["classification"],
    )
