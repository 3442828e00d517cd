"""PostgreSQL mission store: Data Sync missions shared by every node (``--storage postgresql://...``).

Reads, upserts and a ``create`` retried after it committed (it finds exactly its own mission) are
retried after a lost connection. Operations that log a change or report what they changed run once:
a retry could log an entry twice or report a change as not made.
"""

from __future__ import annotations

from typing import Any

import asyncpg

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
from rallypoint.storage.postgres.missions_schema import (
    CONTENT_COLUMNS,
    ITEM_COLUMNS,
    LOCK_KEY,
    MIGRATIONS,
    MISSION_COLUMNS,
    mission_of,
    mission_row,
)
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy, rows_affected

_MISSION_VALUES = ", ".join(f"${i}" for i in range(1, 16))


class PostgresMissionRecords:
    """``MissionRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="missions",
                                  max_size=max_connections, retry=retry)

    async def create(self, mission: Mission, change: MissionChange) -> bool:
        """Insert a mission and its creation entry; False (nothing written) if the name is taken."""

        async def op(conn: asyncpg.Connection) -> bool:
            async with conn.transaction():
                made = await conn.fetchval(
                    f"INSERT INTO missions ({MISSION_COLUMNS}) VALUES ({_MISSION_VALUES})"
                    " ON CONFLICT DO NOTHING RETURNING true",
                    *mission_row(mission),
                )
                if made:
                    await _log(conn, mission.guid, change)
                    return True
            # A retry of a create that committed finds exactly its own mission.
            return await _mission(conn, "guid", mission.guid) == mission

        return await self._pool.retrying(op, name="create")

    async def get(self, name: str) -> Mission | None:
        """The mission named ``name`` (case-sensitive)."""
        return await self._pool.retrying(lambda conn: _mission(conn, "name", name), name="get")

    async def by_guid(self, guid: str) -> Mission | None:
        """The mission with this guid."""
        return await self._pool.retrying(lambda conn: _mission(conn, "guid", guid), name="by_guid")

    async def all(self) -> list[Mission]:
        """Every mission, by name."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(f'SELECT {MISSION_COLUMNS} FROM missions ORDER BY name COLLATE "C"'), name="all"
        )
        return [mission_of(r) for r in rows]

    async def set_keywords(self, guid: str, keywords: tuple[str, ...]) -> bool:
        """Replace a mission's keywords; False if the mission is gone."""
        status = await self._pool.retrying(
            lambda conn: conn.execute("UPDATE missions SET keywords = $2 WHERE guid = $1", guid, list(keywords)),
            name="set_keywords",
        )
        return rows_affected(status) > 0

    async def delete(self, mission: Mission, change: MissionChange) -> bool:
        """Remove a mission with everything under it, logging ``change``; False if it was gone."""

        async def op(conn: asyncpg.Connection) -> bool:
            async with conn.transaction():
                if rows_affected(await conn.execute("DELETE FROM missions WHERE guid = $1", mission.guid)) == 0:
                    return False
                await _log(conn, mission.guid, change)
                return True

        return await self._pool.once(op, name="delete")

    async def add_contents(self, guid: str, contents: list[MissionContent], creator_uid: str) -> list[MissionContent]:
        """Add data packages; returns those that were not in the mission yet (each logged as a change)."""

        async def op(conn: asyncpg.Connection) -> list[MissionContent]:
            async with conn.transaction():
                name = await conn.fetchval("SELECT name FROM missions WHERE guid = $1 FOR UPDATE", guid)
                if name is None:
                    return []
                added: list[MissionContent] = []
                for c in contents:
                    made = await conn.fetchval(
                        f"INSERT INTO mission_contents (guid, {CONTENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7,"
                        " $8, $9) ON CONFLICT DO NOTHING RETURNING true",
                        guid, c.hash, c.creator_uid, c.timestamp, c.name, c.size, c.mime_type, c.submitter,
                        list(c.keywords),
                    )
                    if made:
                        added.append(c)
                        await _log(conn, guid, MissionChange(
                            type=ChangeType.ADD_CONTENT, mission=name, creator_uid=creator_uid or c.creator_uid,
                            timestamp=c.timestamp, content_hash=c.hash,
                        ))
                return added

        return await self._pool.once(op, name="add_contents")

    async def remove_content(self, guid: str, change: MissionChange) -> bool:
        """Remove ``change.content_hash`` and log ``change``; False if it was not there."""
        return await self._remove(guid, "mission_contents", "hash", change.content_hash, change)

    async def contents(self, guid: str) -> list[MissionContent]:
        """The mission's data packages, oldest first."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                f"SELECT {CONTENT_COLUMNS} FROM mission_contents WHERE guid = $1"
                ' ORDER BY timestamp, hash COLLATE "C"',
                guid,
            ),
            name="contents",
        )
        return [
            MissionContent(hash=r["hash"], creator_uid=r["creator_uid"], timestamp=r["timestamp"], name=r["name"],
                           size=r["size"], mime_type=r["mime_type"], submitter=r["submitter"],
                           keywords=tuple(r["keywords"]))
            for r in rows
        ]

    async def put_item(self, guid: str, item: MissionItem, change: MissionChange | None) -> bool:
        """Record a uid (replacing its XML when the item carries some); True if the uid is new.

        ``change`` is logged only when the uid is new.
        """

        async def op(conn: asyncpg.Connection) -> bool:
            async with conn.transaction():
                if await conn.fetchval("SELECT 1 FROM missions WHERE guid = $1", guid) is None:
                    return False
                made = await conn.fetchval(
                    f"INSERT INTO mission_uids (guid, {ITEM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    " ON CONFLICT DO NOTHING RETURNING true",
                    guid, item.uid, item.creator_uid, item.timestamp, item.cot_type, item.callsign, item.xml,
                )
                if made:
                    if change is not None:
                        await _log(conn, guid, change)
                    return True
                if item.xml:
                    # A newer report of a uid already in the mission: keep the latest snapshot only.
                    await conn.execute(
                        "UPDATE mission_uids SET xml = $3, cot_type = $4, callsign = $5 WHERE guid = $1 AND uid = $2",
                        guid, item.uid, item.xml, item.cot_type, item.callsign,
                    )
                return False

        return await self._pool.once(op, name="put_item")

    async def remove_item(self, guid: str, change: MissionChange) -> bool:
        """Remove ``change.content_uid`` and log ``change``; False if it was not there."""
        return await self._remove(guid, "mission_uids", "uid", change.content_uid, change)

    async def items(self, guid: str) -> list[MissionItem]:
        """The mission's uids, oldest first."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                f'SELECT {ITEM_COLUMNS} FROM mission_uids WHERE guid = $1 ORDER BY timestamp, uid COLLATE "C"', guid
            ),
            name="items",
        )
        return [
            MissionItem(uid=r["uid"], creator_uid=r["creator_uid"], timestamp=r["timestamp"], cot_type=r["cot_type"],
                        callsign=r["callsign"], xml=bytes(r["xml"]))
            for r in rows
        ]

    async def subscribe(self, guid: str, sub: Subscription) -> None:
        """Insert or replace the client's subscription (a new token replaces the old one)."""
        await self._pool.retrying(
            lambda conn: conn.execute(
                "INSERT INTO mission_subscriptions (guid, client_uid, principal, token, role, create_time)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (guid, client_uid) DO UPDATE SET"
                " principal = excluded.principal, token = excluded.token, role = excluded.role,"
                " create_time = excluded.create_time",
                guid, sub.client_uid, sub.principal, sub.token, sub.role.value, sub.create_time,
            ),
            name="subscribe",
        )

    async def unsubscribe(self, guid: str, client_uid: str) -> bool:
        """Drop a subscription; False if there was none."""
        status = await self._pool.once(
            lambda conn: conn.execute(
                "DELETE FROM mission_subscriptions WHERE guid = $1 AND client_uid = $2", guid, client_uid
            ),
            name="unsubscribe",
        )
        return rows_affected(status) > 0

    async def set_role(self, guid: str, client_uid: str, role: Role) -> bool:
        """Change a subscriber's role; False if the client is not subscribed."""
        status = await self._pool.retrying(
            lambda conn: conn.execute(
                "UPDATE mission_subscriptions SET role = $3 WHERE guid = $1 AND client_uid = $2",
                guid, client_uid, role.value,
            ),
            name="set_role",
        )
        return rows_affected(status) > 0

    async def subscriptions(self, guid: str | None = None) -> list[Subscription]:
        """Subscriptions of one mission, or of every mission when ``guid`` is None."""
        query = (
            "SELECT m.name, s.client_uid, s.principal, s.token, s.role, s.create_time"
            " FROM mission_subscriptions s JOIN missions m ON m.guid = s.guid"
        )
        args: tuple[str, ...]
        if guid is None:
            sql, args = query + " ORDER BY s.create_time", ()
        else:
            sql, args = query + " WHERE s.guid = $1 ORDER BY s.create_time", (guid,)
        rows = await self._pool.retrying(lambda conn: conn.fetch(sql, *args), name="subscriptions")
        return [
            Subscription(mission=r[0], client_uid=r[1], principal=r[2], token=r[3], role=Role(r[4]), create_time=r[5])
            for r in rows
        ]

    async def invite(self, guid: str, invitation: Invitation) -> None:
        """Record (or refresh) an invitation."""
        inv = invitation
        await self._pool.retrying(
            lambda conn: conn.execute(
                "INSERT INTO mission_invitations (guid, type, invitee, creator_uid, role, create_time)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (guid, type, invitee) DO UPDATE SET"
                " creator_uid = excluded.creator_uid, role = excluded.role, create_time = excluded.create_time",
                guid, inv.type.value, inv.invitee, inv.creator_uid, inv.role.value, inv.create_time,
            ),
            name="invite",
        )

    async def invitations(self, guid: str) -> list[Invitation]:
        """Invitations to one mission."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                "SELECT m.name, i.type, i.invitee, i.creator_uid, i.role, i.create_time"
                " FROM mission_invitations i JOIN missions m ON m.guid = i.guid WHERE i.guid = $1"
                " ORDER BY i.create_time",
                guid,
            ),
            name="invitations",
        )
        return [
            Invitation(mission=r[0], type=InviteType(r[1]), invitee=r[2], creator_uid=r[3], role=Role(r[4]),
                       create_time=r[5])
            for r in rows
        ]

    async def log_change(self, guid: str, change: MissionChange) -> None:
        """Append one change-log entry."""
        await self._pool.once(lambda conn: _log(conn, guid, change), name="log_change")

    async def changes(self, guid: str, *, since_ms: int = 0, until_ms: int | None = None,
                      limit: int = 1000) -> list[MissionChange]:
        """Change-log entries with ``since_ms <= timestamp <= until_ms``, oldest first, at most ``limit``."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                "SELECT type, mission, creator_uid, timestamp, content_hash, content_uid, details"
                " FROM mission_changes WHERE guid = $1 AND timestamp >= $2 AND timestamp <= $3 ORDER BY id LIMIT $4",
                guid, since_ms, until_ms if until_ms is not None else 2**62, limit,
            ),
            name="changes",
        )
        return [
            MissionChange(type=ChangeType(r[0]), mission=r[1], creator_uid=r[2], timestamp=r[3], content_hash=r[4],
                          content_uid=r[5], details=r[6])
            for r in rows
        ]

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()

    async def _remove(self, guid: str, table: str, column: str, key: str | None, change: MissionChange) -> bool:
        async def op(conn: asyncpg.Connection) -> bool:
            async with conn.transaction():
                # ``table`` and ``column`` are literals chosen by this class.
                status = await conn.execute(f"DELETE FROM {table} WHERE guid = $1 AND {column} = $2", guid, key)
                if rows_affected(status) == 0:
                    return False
                await _log(conn, guid, change)
                return True

        return await self._pool.once(op, name=f"remove from {table}")


async def _mission(conn: asyncpg.Connection, column: str, value: str) -> Mission | None:
    # ``column`` is one of two literals chosen by this module, never caller text.
    row = await conn.fetchrow(f"SELECT {MISSION_COLUMNS} FROM missions WHERE {column} = $1", value)
    return None if row is None else mission_of(row)


async def _log(conn: asyncpg.Connection, guid: str, c: MissionChange) -> Any:
    return await conn.execute(
        "INSERT INTO mission_changes (guid, mission, type, creator_uid, timestamp, content_hash, content_uid, details)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        guid, c.mission, c.type.value, c.creator_uid, c.timestamp, c.content_hash, c.content_uid, c.details,
    )
