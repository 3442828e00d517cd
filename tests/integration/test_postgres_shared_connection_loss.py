"""PostgreSQL connections killed under the shared stores: the audit chain and accounts come through intact."""

from __future__ import annotations

import asyncio

from rallypoint.security.audit import AuditLog
from rallypoint.storage.base.users import UserRecord
from rallypoint.storage.postgres.audit import PostgresAuditRecords
from rallypoint.storage.postgres.pool import RetryPolicy
from rallypoint.storage.postgres.users import PostgresUserRecords
from tests.support.postgres import PostgresDatabase

ENTRIES = 30


async def test_audit_appends_and_account_inserts_survive_terminated_backends(
    postgres_database: PostgresDatabase,
) -> None:
    dsn = await postgres_database.fresh()
    retry = RetryPolicy(attempts=20, first_s=0.01)
    log = AuditLog(PostgresAuditRecords(dsn, retry=retry))
    users = PostgresUserRecords(dsn, retry=retry)
    progressed = asyncio.Event()
    done = False
    killed = 0

    async def write() -> None:
        nonlocal done
        try:
            for n in range(ENTRIES):
                await log.append("alice", "user.add", f"user-{n}", now_ms=n)
                record = UserRecord(name=f"user-{n}", role="member", groups_in=frozenset({"A"}),
                                    groups_out=frozenset(), password_hash=None, disabled=False, created_ms=n,
                                    updated_ms=n, failed_logins=0, locked_until_ms=None)
                assert await users.insert(record)
                progressed.set()
        finally:
            done = True
            progressed.set()

    async def kill() -> None:
        nonlocal killed
        # After every acknowledged write, kill whatever connections the stores hold, as a failover would.
        while not done:
            await progressed.wait()
            progressed.clear()
            killed += await postgres_database.terminate_backends()

    try:
        await asyncio.gather(write(), kill())
        assert killed > 0
        result = await log.verify()
        # Every acknowledged entry exactly once, chained without a gap.
        assert result.ok and result.checked == ENTRIES, result.problems
        assert [e.target for e in await log.entries()] == [f"user-{n}" for n in range(ENTRIES)]
        assert len(await users.list()) == ENTRIES
    finally:
        await log.close()
        await users.close()
