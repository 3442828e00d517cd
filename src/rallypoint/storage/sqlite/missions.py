"""SQLite rows behind Data Sync missions (``services.missions`` owns the rules; this module only stores).

Child rows (contents, uids, subscriptions, invitations) hang off the mission's guid and go with it
when the mission is deleted. The change log is keyed by guid too but has no foreign key: the
``DELETE_MISSION`` entry outlives the mission, and a new mission reusing the name gets a new guid,
so it never sees its predecessor's history.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from rallypoint.model.mission import (
    ChangeType,
    Invitation,
    InviteType,
    Mission,
    MissionChange,
    MissionContent,
    MissionItem,
    Role,
    Subscription,
)
from rallypoint.storage.sqlite.worker import SqliteWorker, transaction

_MIGRATIONS: tuple[str, ...] = (
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
)

_MISSION_COLUMNS = (
    "name, guid, create_time, creator_uid, creator_principal, groups, description, tool, keywords, "
    "password_hash, default_role, invite_only, expiration, chat_room, classification"
)
_CONTENT_COLUMNS = "hash, creator_uid, timestamp, name, size, mime_type, submitter, keywords"
_ITEM_COLUMNS = "uid, creator_uid, timestamp, cot_type, callsign, xml"
_SUB_COLUMNS = "client_uid, principal, token, role, create_time"


class SqliteMissionStore:
    """Missions and their contents, uids, subscriptions, invitations and change log in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="missions")

    @property
    def path(self) -> Path:
        """The database file."""
        return self._worker.path

    async def create(self, mission: Mission, change: MissionChange) -> bool:
        """Insert a mission and its creation entry; False (nothing written) if the name is taken."""
        return await self._worker.run(_create, mission, change)

    async def get(self, name: str) -> Mission | None:
        """The mission named ``name`` (case-sensitive)."""
        return await self._worker.run(_get, "name", name)

    async def by_guid(self, guid: str) -> Mission | None:
        """The mission with this guid."""
        return await self._worker.run(_get, "guid", guid)

    async def all(self) -> list[Mission]:
        """Every mission, by name."""
        return await self._worker.run(_all)

    async def delete(self, mission: Mission, change: MissionChange) -> bool:
        """Remove a mission with everything under it, logging ``change``; False if it was gone."""
        return await self._worker.run(_delete, mission.guid, change)

    async def add_contents(self, guid: str, contents: list[MissionContent], creator_uid: str) -> list[MissionContent]:
        """Add data packages; returns those that were not in the mission yet (each logged as a change)."""
        return await self._worker.run(_add_contents, guid, contents, creator_uid)

    async def remove_content(self, guid: str, change: MissionChange) -> bool:
        """Remove ``change.content_hash`` and log ``change``; False if it was not there."""
        return await self._worker.run(_remove, guid, "mission_contents", "hash", change.content_hash, change)

    async def contents(self, guid: str) -> list[MissionContent]:
        """The mission's data packages, oldest first."""
        return await self._worker.run(_contents, guid)

    async def put_item(self, guid: str, item: MissionItem, change: MissionChange | None) -> bool:
        """Record a uid (replacing its XML when the item carries some); True if the uid is new.

        ``change`` is logged only when the uid is new.
        """
        return await self._worker.run(_put_item, guid, item, change)

    async def remove_item(self, guid: str, change: MissionChange) -> bool:
        """Remove ``change.content_uid`` and log ``change``; False if it was not there."""
        return await self._worker.run(_remove, guid, "mission_uids", "uid", change.content_uid, change)

    async def items(self, guid: str) -> list[MissionItem]:
        """The mission's uids, oldest first."""
        return await self._worker.run(_items, guid)

    async def subscribe(self, guid: str, sub: Subscription) -> None:
        """Insert or replace the client's subscription (a new token replaces the old one)."""
        await self._worker.run(_subscribe, guid, sub)

    async def unsubscribe(self, guid: str, client_uid: str) -> bool:
        """Drop a subscription; False if there was none."""
        return await self._worker.run(_unsubscribe, guid, client_uid)

    async def set_role(self, guid: str, client_uid: str, role: Role) -> bool:
        """Change a subscriber's role; False if the client is not subscribed."""
        return await self._worker.run(_set_role, guid, client_uid, role)

    async def subscriptions(self, guid: str | None = None) -> list[Subscription]:
        """Subscriptions of one mission, or of every mission when ``guid`` is None."""
        return await self._worker.run(_subscriptions, guid)

    async def invite(self, guid: str, invitation: Invitation) -> None:
        """Record (or refresh) an invitation."""
        await self._worker.run(_invite, guid, invitation)

    async def invitations(self, guid: str) -> list[Invitation]:
        """Invitations to one mission."""
        return await self._worker.run(_invitations, guid)

    async def log_change(self, guid: str, change: MissionChange) -> None:
        """Append one change-log entry."""
        await self._worker.run(_log_change, guid, change)

    async def changes(self, guid: str, *, since_ms: int = 0, until_ms: int | None = None,
                      limit: int = 1000) -> list[MissionChange]:
        """Change-log entries with ``since_ms <= timestamp <= until_ms``, oldest first, at most ``limit``."""
        return await self._worker.run(_changes, guid, since_ms, until_ms, limit)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _mission_row(m: Mission) -> tuple[object, ...]:
    return (
        m.name, m.guid, m.create_time, m.creator_uid, m.creator_principal, json.dumps(sorted(m.groups)),
        m.description, m.tool, json.dumps(list(m.keywords)), m.password_hash, m.default_role.value,
        int(m.invite_only), m.expiration, m.chat_room, m.classification,
    )


def _mission(row: tuple[object, ...]) -> Mission:
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


def _insert_change(db: sqlite3.Connection, guid: str, c: MissionChange) -> None:
    db.execute(
        "INSERT INTO mission_changes (guid, mission, type, creator_uid, timestamp, content_hash, content_uid, details)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (guid, c.mission, c.type.value, c.creator_uid, c.timestamp, c.content_hash, c.content_uid, c.details),
    )


def _create(db: sqlite3.Connection, mission: Mission, change: MissionChange) -> bool:
    def job() -> bool:
        cur = db.execute(
            f"INSERT OR IGNORE INTO missions ({_MISSION_COLUMNS}) VALUES ({', '.join('?' * 15)})",
            _mission_row(mission),
        )
        if cur.rowcount == 0:
            return False
        _insert_change(db, mission.guid, change)
        return True

    return transaction(db, job)


def _get(db: sqlite3.Connection, column: str, value: str) -> Mission | None:
    # ``column`` is one of two literals chosen by this module, never caller text.
    row = db.execute(f"SELECT {_MISSION_COLUMNS} FROM missions WHERE {column} = ?", (value,)).fetchone()
    return None if row is None else _mission(row)


def _all(db: sqlite3.Connection) -> list[Mission]:
    return [_mission(row) for row in db.execute(f"SELECT {_MISSION_COLUMNS} FROM missions ORDER BY name")]


def _delete(db: sqlite3.Connection, guid: str, change: MissionChange) -> bool:
    def job() -> bool:
        if db.execute("DELETE FROM missions WHERE guid = ?", (guid,)).rowcount == 0:
            return False
        _insert_change(db, guid, change)
        return True

    return transaction(db, job)


def _add_contents(
    db: sqlite3.Connection, guid: str, contents: list[MissionContent], creator_uid: str
) -> list[MissionContent]:
    def job() -> list[MissionContent]:
        mission = db.execute("SELECT name FROM missions WHERE guid = ?", (guid,)).fetchone()
        if mission is None:
            return []
        added: list[MissionContent] = []
        for c in contents:
            cur = db.execute(
                f"INSERT OR IGNORE INTO mission_contents (guid, {_CONTENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (guid, c.hash, c.creator_uid, c.timestamp, c.name, c.size, c.mime_type, c.submitter,
                 json.dumps(list(c.keywords))),
            )
            if cur.rowcount:
                added.append(c)
                _insert_change(db, guid, MissionChange(
                    type=ChangeType.ADD_CONTENT, mission=mission[0], creator_uid=creator_uid,
                    timestamp=c.timestamp, content_hash=c.hash,
                ))
        return added

    return transaction(db, job)


def _remove(db: sqlite3.Connection, guid: str, table: str, column: str, key: str | None,
            change: MissionChange) -> bool:
    def job() -> bool:
        # ``table`` and ``column`` are literals chosen by this module.
        if db.execute(f"DELETE FROM {table} WHERE guid = ? AND {column} = ?", (guid, key)).rowcount == 0:
            return False
        _insert_change(db, guid, change)
        return True

    return transaction(db, job)


def _contents(db: sqlite3.Connection, guid: str) -> list[MissionContent]:
    cur = db.execute(
        f"SELECT {_CONTENT_COLUMNS} FROM mission_contents WHERE guid = ? ORDER BY timestamp, hash", (guid,)
    )
    return [
        MissionContent(hash=h, creator_uid=cu, timestamp=ts, name=n, size=s, mime_type=mt, submitter=sub,
                       keywords=tuple(json.loads(kw)))
        for h, cu, ts, n, s, mt, sub, kw in cur
    ]


def _put_item(db: sqlite3.Connection, guid: str, item: MissionItem, change: MissionChange | None) -> bool:
    def job() -> bool:
        if db.execute("SELECT 1 FROM missions WHERE guid = ?", (guid,)).fetchone() is None:
            return False
        cur = db.execute(
            f"INSERT OR IGNORE INTO mission_uids (guid, {_ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (guid, item.uid, item.creator_uid, item.timestamp, item.cot_type, item.callsign, item.xml),
        )
        if cur.rowcount:
            if change is not None:
                _insert_change(db, guid, change)
            return True
        if item.xml:
            # A newer report of a uid already in the mission: keep the latest snapshot only.
            db.execute(
                "UPDATE mission_uids SET xml = ?, cot_type = ?, callsign = ? WHERE guid = ? AND uid = ?",
                (item.xml, item.cot_type, item.callsign, guid, item.uid),
            )
        return False

    return transaction(db, job)


def _items(db: sqlite3.Connection, guid: str) -> list[MissionItem]:
    cur = db.execute(f"SELECT {_ITEM_COLUMNS} FROM mission_uids WHERE guid = ? ORDER BY timestamp, uid", (guid,))
    return [
        MissionItem(uid=u, creator_uid=cu, timestamp=ts, cot_type=t, callsign=cs, xml=bytes(x))
        for u, cu, ts, t, cs, x in cur
    ]


def _subscribe(db: sqlite3.Connection, guid: str, sub: Subscription) -> None:
    db.execute(
        f"INSERT OR REPLACE INTO mission_subscriptions (guid, {_SUB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (guid, sub.client_uid, sub.principal, sub.token, sub.role.value, sub.create_time),
    )


def _unsubscribe(db: sqlite3.Connection, guid: str, client_uid: str) -> bool:
    cur = db.execute("DELETE FROM mission_subscriptions WHERE guid = ? AND client_uid = ?", (guid, client_uid))
    return cur.rowcount > 0


def _set_role(db: sqlite3.Connection, guid: str, client_uid: str, role: Role) -> bool:
    cur = db.execute(
        "UPDATE mission_subscriptions SET role = ? WHERE guid = ? AND client_uid = ?", (role.value, guid, client_uid)
    )
    return cur.rowcount > 0


def _subscriptions(db: sqlite3.Connection, guid: str | None) -> list[Subscription]:
    query = (
        "SELECT m.name, s.client_uid, s.principal, s.token, s.role, s.create_time "
        "FROM mission_subscriptions s JOIN missions m ON m.guid = s.guid"
    )
    cur = (
        db.execute(query + " ORDER BY s.create_time")
        if guid is None
        else db.execute(query + " WHERE s.guid = ? ORDER BY s.create_time", (guid,))
    )
    return [
        Subscription(mission=name, client_uid=cu, principal=p, token=t, role=Role(r), create_time=ct)
        for name, cu, p, t, r, ct in cur
    ]


def _invite(db: sqlite3.Connection, guid: str, inv: Invitation) -> None:
    db.execute(
        "INSERT OR REPLACE INTO mission_invitations (guid, type, invitee, creator_uid, role, create_time)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (guid, inv.type.value, inv.invitee, inv.creator_uid, inv.role.value, inv.create_time),
    )


def _invitations(db: sqlite3.Connection, guid: str) -> list[Invitation]:
    cur = db.execute(
        "SELECT m.name, i.type, i.invitee, i.creator_uid, i.role, i.create_time "
        "FROM mission_invitations i JOIN missions m ON m.guid = i.guid WHERE i.guid = ? ORDER BY i.create_time",
        (guid,),
    )
    return [
        Invitation(mission=n, type=InviteType(t), invitee=i, creator_uid=c, role=Role(r), create_time=ct)
        for n, t, i, c, r, ct in cur
    ]


def _log_change(db: sqlite3.Connection, guid: str, change: MissionChange) -> None:
    _insert_change(db, guid, change)


def _changes(db: sqlite3.Connection, guid: str, since_ms: int, until_ms: int | None,
             limit: int) -> list[MissionChange]:
    cur = db.execute(
        "SELECT type, mission, creator_uid, timestamp, content_hash, content_uid, details FROM mission_changes "
        "WHERE guid = ? AND timestamp >= ? AND timestamp <= ? ORDER BY id LIMIT ?",
        (guid, since_ms, until_ms if until_ms is not None else 2**62, limit),
    )
    return [
        MissionChange(type=ChangeType(t), mission=m, creator_uid=c, timestamp=ts, content_hash=h, content_uid=u,
                      details=d)
        for t, m, c, ts, h, u, d in cur
    ]
