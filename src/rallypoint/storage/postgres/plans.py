"""PostgreSQL plan versions, in the missions schema (migration family ``missions``).

Reads are retried after a lost connection; an append is retried too: a retry after an unseen
commit finds its own row (same number, same content) and reports it written.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from rallypoint.model.plan import Plan, PlanVersion, VersionInfo
from rallypoint.storage.postgres.missions_schema import LOCK_KEY, MIGRATIONS
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy

_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(Plan).decode
_COLUMNS = "guid, version, author, time_ms, reason, reverted_from, plan"


class PostgresPlanRecords:
    """``PlanRecords`` in a PostgreSQL database, beside the missions."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="missions",
                                  max_size=max_connections, retry=retry)

    async def append(self, version: PlanVersion) -> bool:
        """Store a new version; False (nothing written) if its number is taken or the mission is gone."""
        v = version
        body = _ENCODE(v.plan)

        async def op(conn: asyncpg.Connection) -> bool:
            made = await conn.fetchval(
                f"INSERT INTO plan_versions ({_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7"
                " WHERE EXISTS (SELECT 1 FROM missions WHERE guid = $1)"
                " ON CONFLICT DO NOTHING RETURNING true",
                v.mission_guid, v.version, v.author, v.time_ms, v.reason, v.reverted_from, body,
            )
            if made:
                return True
            # A retry of an append that committed finds exactly its own version.
            return await _get(conn, v.mission_guid, v.version) == v

        return await self._pool.retrying(op, name="plan_append")

    async def latest(self, mission_guid: str) -> PlanVersion | None:
        """The newest version of a mission's plan, None if it has none."""
        row = await self._pool.retrying(
            lambda conn: conn.fetchrow(
                f"SELECT {_COLUMNS} FROM plan_versions WHERE guid = $1 ORDER BY version DESC LIMIT 1", mission_guid),
            name="plan_latest")
        return None if row is None else _version_of(row)

    async def get(self, mission_guid: str, version: int) -> PlanVersion | None:
        """One version, None if there is no such version."""
        return await self._pool.retrying(lambda conn: _get(conn, mission_guid, version), name="plan_get")

    async def versions(self, mission_guid: str, *, limit: int = 1000) -> list[VersionInfo]:
        """The newest ``limit`` versions without their plans, oldest first."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                "SELECT version, author, time_ms, reason, reverted_from FROM plan_versions WHERE guid = $1"
                " ORDER BY version DESC LIMIT $2", mission_guid, limit),
            name="plan_versions")
        return [VersionInfo(version=r["version"], author=r["author"], time_ms=r["time_ms"], reason=r["reason"],
                            reverted_from=r["reverted_from"]) for r in reversed(rows)]

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()


async def _get(conn: asyncpg.Connection, guid: str, version: int) -> PlanVersion | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM plan_versions WHERE guid = $1 AND version = $2",
                              guid, version)
    return None if row is None else _version_of(row)


def _version_of(row: Any) -> PlanVersion:
    return PlanVersion(mission_guid=row["guid"], version=row["version"], author=row["author"],
                       time_ms=row["time_ms"], reason=row["reason"], reverted_from=row["reverted_from"],
                       plan=_DECODE(row["plan"]))
