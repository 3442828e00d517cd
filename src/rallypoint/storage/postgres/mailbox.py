"""PostgreSQL mailbox store: each node's store-and-forward mail (``--storage postgresql://...``).

A node numbers its mail itself (from the high-water mark it loaded at start), so rows carry the
node's id (``node``) and nodes sharing a database keep their mailboxes apart; a node restarting with
the same id finds its own. The tables mirror the SQLite store (``storage.sqlite.mailbox``), ``seen``
included (``mailbox_seen``, migration 2).

``load_state`` is synchronous (it runs once, before the node serves): it reads over a connection of
its own, on a loop of its own in a helper thread, after applying the migrations. A batch applied
twice changes nothing more than once, so batches and purges are retried after a lost connection.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import asyncpg

from rallypoint.errors import StorageError
from rallypoint.storage.base.mailbox import MailboxBatch, MailboxState, MailRecord, RecipientRecord, SeenRecord
from rallypoint.storage.postgres.migrations import Migration, migrate
from rallypoint.storage.postgres.options import split_url
from rallypoint.storage.postgres.pool import RETRYABLE, PostgresPool, RetryPolicy

# pg_advisory_lock key for the mailbox store's migrations ("rallypoint mailbox", stable forever).
LOCK_KEY = 0x52505F4D41494C42
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "mailbox",
        """
        CREATE TABLE mailbox_messages (
            node       text NOT NULL,
            seq        bigint NOT NULL,
            xml        bytea NOT NULL,
            groups     text[] NOT NULL,
            priority   integer NOT NULL,
            created_ms bigint NOT NULL,
            expires_ms bigint NOT NULL,
            PRIMARY KEY (node, seq)
        );
        CREATE INDEX mailbox_messages_expires ON mailbox_messages (node, expires_ms);
        CREATE TABLE mailbox_pending (
            node     text NOT NULL,
            identity text NOT NULL,
            seq      bigint NOT NULL,
            PRIMARY KEY (node, identity, seq),
            FOREIGN KEY (node, seq) REFERENCES mailbox_messages (node, seq) ON DELETE CASCADE
        );
        CREATE INDEX mailbox_pending_seq ON mailbox_pending (node, seq);
        CREATE TABLE mailbox_cursors (
            node     text NOT NULL,
            identity text NOT NULL,
            last_seq bigint NOT NULL,
            PRIMARY KEY (node, identity)
        );
        CREATE TABLE mailbox_recipients (
            node         text NOT NULL,
            identity     text NOT NULL,
            uid          text,
            callsign     text,
            principal    text,
            read_groups  text[] NOT NULL,
            last_seen_ms bigint NOT NULL,
            PRIMARY KEY (node, identity)
        );
        CREATE TABLE mailbox_meta (
            node     text PRIMARY KEY,
            last_seq bigint NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "mailbox seen",
        """
        CREATE TABLE mailbox_seen (
            node       text NOT NULL,
            identity   text NOT NULL,
            uid        text NOT NULL,
            time       bigint NOT NULL,
            expires_ms bigint NOT NULL,
            PRIMARY KEY (node, identity, uid, time)
        );
        CREATE INDEX mailbox_seen_expires ON mailbox_seen (node, expires_ms);
        """,
    ),
)


class PostgresMailboxRecords:
    """``MailboxRecords`` of node ``node`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, node: str, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._node = node
        self._pool = PostgresPool(
            dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="mailbox", max_size=max_connections, retry=retry
        )
        # The URL without Rallypoint's own parameters, and the policy they chose.
        self._dsn, _ = split_url(dsn)
        self._retry = self._pool.retry

    def load_state(self, now_ms: int) -> MailboxState:
        """Everything still deliverable at ``now_ms`` (blocks the caller; run once, before serving)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailbox-load") as pool:
            return pool.submit(asyncio.run, self._load(now_ms)).result()

    async def _load(self, now_ms: int) -> MailboxState:
        delays = self._retry.delays()
        for attempt in range(len(delays) + 1):
            try:
                conn = await asyncpg.connect(self._dsn)
                try:
                    await migrate(conn, MIGRATIONS, lock_key=LOCK_KEY, what="mailbox")
                    async with conn.transaction(isolation="repeatable_read", readonly=True):
                        return await _read_state(conn, self._node, now_ms)
                finally:
                    await conn.close()
            except RETRYABLE as exc:
                if attempt == len(delays):
                    raise StorageError(f"postgresql mailbox store: load failed: {exc!r}") from exc
                await asyncio.sleep(delays[attempt])
            except asyncpg.PostgresError as exc:
                raise StorageError(f"postgresql mailbox store: load failed: {exc}") from exc
        raise AssertionError("unreachable")

    async def apply(self, batch: MailboxBatch) -> None:
        """Write one batch atomically."""
        node = self._node

        async def op(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await _apply(conn, node, batch)

        await self._pool.retrying(op, name="apply")

    async def purge(self, now_ms: int) -> int:
        """Delete expired and fully delivered messages and expired seen rows; returns how many message rows went."""
        node = self._node

        async def op(conn: asyncpg.Connection) -> int:
            async with conn.transaction():
                expired = await conn.fetch(
                    "DELETE FROM mailbox_messages WHERE node = $1 AND expires_ms <= $2 RETURNING seq", node, now_ms
                )
                await conn.execute("DELETE FROM mailbox_seen WHERE node = $1 AND expires_ms <= $2", node, now_ms)
                await conn.execute(
                    "DELETE FROM mailbox_pending p USING mailbox_cursors c"
                    " WHERE p.node = $1 AND c.node = p.node AND c.identity = p.identity AND p.seq <= c.last_seq",
                    node,
                )
                orphans = await conn.fetch(
                    "DELETE FROM mailbox_messages m WHERE m.node = $1 AND NOT EXISTS"
                    " (SELECT 1 FROM mailbox_pending p WHERE p.node = m.node AND p.seq = m.seq) RETURNING seq",
                    node,
                )
                return len(expired) + len(orphans)

        return await self._pool.retrying(op, name="purge")

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()


async def _read_state(conn: asyncpg.Connection, node: str, now_ms: int) -> MailboxState:
    cursors = {
        r["identity"]: int(r["last_seq"])
        for r in await conn.fetch("SELECT identity, last_seq FROM mailbox_cursors WHERE node = $1", node)
    }
    high = await conn.fetchval("SELECT last_seq FROM mailbox_meta WHERE node = $1", node) or 0
    max_msg = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM mailbox_messages WHERE node = $1", node)
    high = max(int(high), int(max_msg), max(cursors.values(), default=0))
    mails: dict[int, MailRecord] = {}
    pending: dict[str, list[MailRecord]] = {}
    rows = await conn.fetch(
        "SELECT p.identity, m.seq, m.xml, m.groups, m.priority, m.created_ms, m.expires_ms"
        " FROM mailbox_pending p JOIN mailbox_messages m ON m.node = p.node AND m.seq = p.seq"
        " LEFT JOIN mailbox_cursors c ON c.node = p.node AND c.identity = p.identity"
        " WHERE p.node = $1 AND m.expires_ms > $2 AND p.seq > coalesce(c.last_seq, 0)"
        ' ORDER BY p.identity COLLATE "C", p.seq',
        node,
        now_ms,
    )
    for r in rows:
        seq = int(r["seq"])
        mail = mails.get(seq)
        if mail is None:
            mail = mails[seq] = MailRecord(
                seq=seq,
                xml=bytes(r["xml"]),
                groups=frozenset(r["groups"]),
                priority=r["priority"],
                created_ms=r["created_ms"],
                expires_ms=r["expires_ms"],
            )
        pending.setdefault(r["identity"], []).append(mail)
    recipients = [
        RecipientRecord(
            identity=r["identity"],
            uid=r["uid"],
            callsign=r["callsign"],
            principal=r["principal"],
            read_groups=frozenset(r["read_groups"]),
            last_seen_ms=r["last_seen_ms"],
        )
        for r in await conn.fetch(
            "SELECT identity, uid, callsign, principal, read_groups, last_seen_ms FROM mailbox_recipients"
            " WHERE node = $1 ORDER BY last_seen_ms",
            node,
        )
    ]
    seen = [
        SeenRecord(identity=r["identity"], uid=r["uid"], time=r["time"], expires_ms=r["expires_ms"])
        for r in await conn.fetch(
            "SELECT identity, uid, time, expires_ms FROM mailbox_seen WHERE node = $1 AND expires_ms > $2"
            ' ORDER BY identity COLLATE "C", time, uid COLLATE "C"',
            node,
            now_ms,
        )
    ]
    return MailboxState(next_seq=high + 1, pending=pending, cursors=cursors, recipients=recipients, seen=seen)


async def _apply(conn: asyncpg.Connection, node: str, batch: MailboxBatch) -> None:
    high = 0
    for mail, identities in batch.mails:
        await conn.execute(
            "INSERT INTO mailbox_messages (node, seq, xml, groups, priority, created_ms, expires_ms)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            node,
            mail.seq,
            mail.xml,
            sorted(mail.groups),
            mail.priority,
            mail.created_ms,
            mail.expires_ms,
        )
        await conn.executemany(
            "INSERT INTO mailbox_pending (node, identity, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [(node, identity, mail.seq) for identity in identities],
        )
        high = max(high, mail.seq)
    for identity, seq in batch.cursors:
        await conn.execute(
            "INSERT INTO mailbox_cursors (node, identity, last_seq) VALUES ($1, $2, $3) ON CONFLICT (node, identity)"
            " DO UPDATE SET last_seq = greatest(mailbox_cursors.last_seq, excluded.last_seq)",
            node,
            identity,
            seq,
        )
        await conn.execute(
            "DELETE FROM mailbox_pending WHERE node = $1 AND identity = $2 AND seq <= $3", node, identity, seq
        )
        high = max(high, seq)
    await conn.executemany(
        "DELETE FROM mailbox_pending WHERE node = $1 AND identity = $2 AND seq = $3",
        [(node, identity, seq) for identity, seq in batch.delivered],
    )
    await conn.executemany(
        "INSERT INTO mailbox_recipients (node, identity, uid, callsign, principal, read_groups, last_seen_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (node, identity) DO UPDATE SET uid = excluded.uid,"
        " callsign = excluded.callsign, principal = excluded.principal, read_groups = excluded.read_groups,"
        " last_seen_ms = excluded.last_seen_ms",
        [
            (node, r.identity, r.uid, r.callsign, r.principal, sorted(r.read_groups), r.last_seen_ms)
            for r in batch.recipients
        ],
    )
    for identity in batch.forget:
        for table in ("mailbox_recipients", "mailbox_pending", "mailbox_cursors"):
            # ``table`` is one of three literals of this module.
            await conn.execute(f"DELETE FROM {table} WHERE node = $1 AND identity = $2", node, identity)
    await conn.executemany(
        "INSERT INTO mailbox_seen (node, identity, uid, time, expires_ms) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING",
        [(node, r.identity, r.uid, r.time, r.expires_ms) for r in batch.seen],
    )
    if high:
        await conn.execute(
            "INSERT INTO mailbox_meta (node, last_seq) VALUES ($1, $2) ON CONFLICT (node)"
            " DO UPDATE SET last_seq = greatest(mailbox_meta.last_seq, excluded.last_seq)",
            node,
            high,
        )
