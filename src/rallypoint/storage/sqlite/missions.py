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
    Mission,
    MissionChange,
    MissionContent,
    MissionItem,
    Role,
    Subscription,
)
from rallypoint.storage.sqlite.missions_changes import insert_change, select_changes
from rallypoint.storage.sqlite.missions_members import (
    delete_subscription,
    insert_invitation,
    insert_subscription,
    select_invitations,
    select_subscriptions,
    update_role,
)
from rallypoint.storage.sqlite.missions_schema import (
    CONTENT_COLUMNS,
    ITEM_COLUMNS,
    MIGRATIONS,
    MISSION_COLUMNS,
    mission_of,
    mission_row,
)
from rallypoint.storage.sqlite.worker import SqliteWorker, transaction


class SqliteMissionStore:
    """Missions and their contents, uids, subscriptions, invitations and change log in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=MIGRATIONS, what="missions")

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

    async def set_keywords(self, guid: str, keywords: tuple[str, ...]) -> bool:
        """Replace a mission's keywords; False if the mission is gone."""
        return await self._worker.run(_set_keywords, guid, keywords)

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
        await self._worker.run(insert_subscription, guid, sub)

    async def unsubscribe(self, guid: str, client_uid: str) -> bool:
        """Drop a subscription; False if there was none."""
        return await self._worker.run(delete_subscription, guid, client_uid)

    async def set_role(self, guid: str, client_uid: str, role: Role) -> bool:
        """Change a subscriber's role; False if the client is not subscribed."""
        return await self._worker.run(update_role, guid, client_uid, role)

    async def subscriptions(self, guid: str | None = None) -> list[Subscription]:
        """Subscriptions of one mission, or of every mission when ``guid`` is None."""
        return await self._worker.run(select_subscriptions, guid)

    async def invite(self, guid: str, invitation: Invitation) -> None:
        """Record (or refresh) an invitation."""
        await self._worker.run(insert_invitation, guid, invitation)

    async def invitations(self, guid: str) -> list[Invitation]:
        """Invitations to one mission."""
        return await self._worker.run(select_invitations, guid)

    async def log_change(self, guid: str, change: MissionChange) -> None:
        """Append one change-log entry."""
        await self._worker.run(insert_change, guid, change)

    async def changes(self, guid: str, *, since_ms: int = 0, until_ms: int | None = None,
                      limit: int = 1000) -> list[MissionChange]:
        """Change-log entries with ``since_ms <= timestamp <= until_ms``, oldest first, at most ``limit``."""
        return await self._worker.run(select_changes, guid, since_ms, until_ms, limit)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _create(db: sqlite3.Connection, mission: Mission, change: MissionChange) -> bool:
    def job() -> bool:
        cur = db.execute(
            f"INSERT OR IGNORE INTO missions ({MISSION_COLUMNS}) VALUES ({', '.join('?' * 15)})",
            mission_row(mission),
        )
        if cur.rowcount == 0:
            return False
        insert_change(db, mission.guid, change)
        return True

    return transaction(db, job)


def _get(db: sqlite3.Connection, column: str, value: str) -> Mission | None:
    # ``column`` is one of two literals chosen by this module, never caller text.
    row = db.execute(f"SELECT {MISSION_COLUMNS} FROM missions WHERE {column} = ?", (value,)).fetchone()
    return None if row is None else mission_of(row)


def _all(db: sqlite3.Connection) -> list[Mission]:
    return [mission_of(row) for row in db.execute(f"SELECT {MISSION_COLUMNS} FROM missions ORDER BY name")]


def _set_keywords(db: sqlite3.Connection, guid: str, keywords: tuple[str, ...]) -> bool:
    def job() -> bool:
        cur = db.execute("UPDATE missions SET keywords = ? WHERE guid = ?", (json.dumps(list(keywords)), guid))
        return cur.rowcount > 0

    return transaction(db, job)


def _delete(db: sqlite3.Connection, guid: str, change: MissionChange) -> bool:
    def job() -> bool:
        if db.execute("DELETE FROM missions WHERE guid = ?", (guid,)).rowcount == 0:
            return False
        insert_change(db, guid, change)
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
                f"INSERT OR IGNORE INTO mission_contents (guid, {CONTENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (guid, c.hash, c.creator_uid, c.timestamp, c.name, c.size, c.mime_type, c.submitter,
                 json.dumps(list(c.keywords))),
            )
            if cur.rowcount:
                added.append(c)
                insert_change(db, guid, MissionChange(
                    type=ChangeType.ADD_CONTENT, mission=mission[0], creator_uid=creator_uid or c.creator_uid,
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
        insert_change(db, guid, change)
        return True

    return transaction(db, job)


def _contents(db: sqlite3.Connection, guid: str) -> list[MissionContent]:
    cur = db.execute(
        f"SELECT {CONTENT_COLUMNS} FROM mission_contents WHERE guid = ? ORDER BY timestamp, hash", (guid,)
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
            f"INSERT OR IGNORE INTO mission_uids (guid, {ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (guid, item.uid, item.creator_uid, item.timestamp, item.cot_type, item.callsign, item.xml),
        )
        if cur.rowcount:
            if change is not None:
                insert_change(db, guid, change)
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
    cur = db.execute(f"SELECT {ITEM_COLUMNS} FROM mission_uids WHERE guid = ? ORDER BY timestamp, uid", (guid,))
    return [
        MissionItem(uid=u, creator_uid=cu, timestamp=ts, cot_type=t, callsign=cs, xml=bytes(x))
        for u, cu, ts, t, cs, x in cur
    ]


