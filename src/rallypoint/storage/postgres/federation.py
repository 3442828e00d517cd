"""PostgreSQL federation store: each node's durable peer queues and de-duplication marks.

Federation links belong to one node, so every row carries the node's id (``node``): nodes sharing
a database keep their queues apart, and a node that restarts with the same id finds its own. The
tables mirror the SQLite store (``storage.sqlite.federation``). Loading a backlog (which may create
the queue and says so) runs once; every other operation is idempotent and retried after a lost
connection.
"""

from __future__ import annotations

import asyncpg

from rallypoint.storage.base.federation import PeerBacklog
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy

# pg_advisory_lock key for the federation store's migrations ("rallypoint federation", stable forever).
LOCK_KEY = 0x52505F4645444552
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "federation",
        """
        CREATE TABLE federation_outbound (
            node    text NOT NULL,
            peer    text NOT NULL,
            seq     bigint NOT NULL,
            payload bytea NOT NULL,
            PRIMARY KEY (node, peer, seq)
        );
        CREATE TABLE federation_peers (
            node     text NOT NULL,
            peer     text NOT NULL,
            next_seq bigint NOT NULL,
            acked    bigint NOT NULL,
            epoch    text NOT NULL DEFAULT '',
            PRIMARY KEY (node, peer)
        );
        CREATE TABLE federation_seen (
            node   text NOT NULL,
            origin text NOT NULL,
            epoch  text NOT NULL,
            seq    bigint NOT NULL,
            PRIMARY KEY (node, origin, epoch)
        );
        CREATE TABLE federation_positions (
            node    text NOT NULL,
            peer    text NOT NULL,
            uid     text NOT NULL,
            ord     bigint NOT NULL,
            stale   bigint NOT NULL,
            payload bytea NOT NULL,
            PRIMARY KEY (node, peer, uid)
        );
        """,
    ),
)


class PostgresFederationRecords:
    """``FederationRecords`` of node ``node`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, node: str, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._node = node
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="federation",
                                  max_size=max_connections, retry=retry)

    async def backlog(self, peer: str, new_epoch: str) -> PeerBacklog:
        """Unacknowledged messages of ``peer`` and its counters; creates the queue with ``new_epoch``."""
        node = self._node

        async def op(conn: asyncpg.Connection) -> PeerBacklog:
            async with conn.transaction():
                created = await conn.fetchval(
                    "INSERT INTO federation_peers (node, peer, next_seq, acked, epoch) VALUES ($1, $2, 1, 0, $3)"
                    " ON CONFLICT DO NOTHING RETURNING true",
                    node, peer, new_epoch,
                )
                head = await conn.fetchrow(
                    "SELECT next_seq, acked, epoch FROM federation_peers WHERE node = $1 AND peer = $2", node, peer
                )
                rows = await conn.fetch(
                    "SELECT seq, payload FROM federation_outbound WHERE node = $1 AND peer = $2 AND seq > $3"
                    " ORDER BY seq",
                    node, peer, head["acked"],
                )
            return PeerBacklog(epoch=head["epoch"], next_seq=head["next_seq"], acked=head["acked"],
                               rows=tuple((r["seq"], bytes(r["payload"])) for r in rows), created=bool(created))

        return await self._pool.once(op, name="backlog")

    async def append(self, peer: str, rows: list[tuple[int, bytes]]) -> None:
        """Persist newly queued messages (sequence numbers already assigned by the caller)."""
        if not rows:
            return
        node = self._node

        async def op(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO federation_outbound (node, peer, seq, payload) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (node, peer, seq) DO UPDATE SET payload = excluded.payload",
                    [(node, peer, seq, payload) for seq, payload in rows],
                )
                await conn.execute(
                    "INSERT INTO federation_peers (node, peer, next_seq, acked) VALUES ($1, $2, $3, 0)"
                    " ON CONFLICT (node, peer) DO UPDATE"
                    " SET next_seq = greatest(federation_peers.next_seq, excluded.next_seq)",
                    node, peer, max(seq for seq, _ in rows) + 1,
                )

        await self._pool.retrying(op, name="append")

    async def acknowledge(self, peer: str, seq: int) -> None:
        """The peer has everything up to ``seq``: forget those rows."""
        node = self._node

        async def op(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(
                    "DELETE FROM federation_outbound WHERE node = $1 AND peer = $2 AND seq <= $3", node, peer, seq
                )
                await conn.execute(
                    "INSERT INTO federation_peers (node, peer, next_seq, acked) VALUES ($1, $2, $3 + 1, $3)"
                    " ON CONFLICT (node, peer) DO UPDATE SET acked = greatest(federation_peers.acked, excluded.acked)",
                    node, peer, seq,
                )

        await self._pool.retrying(op, name="acknowledge")

    async def new_epoch(self, peer: str, epoch: str, rows: list[tuple[int, bytes]]) -> None:
        """Start queue ``epoch`` for ``peer`` holding ``rows`` (numbered from 1); the old queue's rows go."""
        node = self._node

        async def op(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute("DELETE FROM federation_outbound WHERE node = $1 AND peer = $2", node, peer)
                await conn.executemany(
                    "INSERT INTO federation_outbound (node, peer, seq, payload) VALUES ($1, $2, $3, $4)",
                    [(node, peer, seq, payload) for seq, payload in rows],
                )
                await conn.execute(
                    "INSERT INTO federation_peers (node, peer, next_seq, acked, epoch) VALUES ($1, $2, $3, 0, $4)"
                    " ON CONFLICT (node, peer) DO UPDATE"
                    " SET next_seq = excluded.next_seq, acked = 0, epoch = excluded.epoch",
                    node, peer, max((seq for seq, _ in rows), default=0) + 1, epoch,
                )

        await self._pool.retrying(op, name="new_epoch")

    async def trim(self, peer: str, keep_after: int) -> None:
        """Drop rows at or below ``keep_after`` without an acknowledgement (queue overflow)."""
        await self._pool.retrying(
            lambda conn: conn.execute(
                "DELETE FROM federation_outbound WHERE node = $1 AND peer = $2 AND seq <= $3",
                self._node, peer, keep_after,
            ),
            name="trim",
        )

    async def positions(self, peer: str, now_ms: int) -> list[tuple[str, int, int, bytes]]:
        """Latest reports kept for ``peer`` as ``(uid, ord, stale, payload)`` by ``ord``; expired ones go."""
        node = self._node

        async def op(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            await conn.execute(
                "DELETE FROM federation_positions WHERE node = $1 AND peer = $2 AND stale <= $3", node, peer, now_ms
            )
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT uid, ord, stale, payload FROM federation_positions WHERE node = $1 AND peer = $2 ORDER BY ord",
                node, peer,
            )
            return rows

        rows = await self._pool.retrying(op, name="positions")
        return [(r["uid"], r["ord"], r["stale"], bytes(r["payload"])) for r in rows]

    async def save_positions(self, peer: str, upserts: list[tuple[str, int, int, bytes]], deletes: list[str]) -> None:
        """Overwrite the latest report of each uid (``(uid, ord, stale, payload)``) and forget ``deletes``."""
        if not upserts and not deletes:
            return
        node = self._node

        async def op(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(
                    "DELETE FROM federation_positions WHERE node = $1 AND peer = $2 AND uid = ANY($3::text[])",
                    node, peer, deletes,
                )
                await conn.executemany(
                    "INSERT INTO federation_positions (node, peer, uid, ord, stale, payload)"
                    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (node, peer, uid) DO UPDATE"
                    " SET ord = excluded.ord, stale = excluded.stale, payload = excluded.payload",
                    [(node, peer, uid, ord_, stale, payload) for uid, ord_, stale, payload in upserts],
                )

        await self._pool.retrying(op, name="save_positions")

    async def prune_positions(self, peer: str, now_ms: int) -> None:
        """Forget kept reports of ``peer`` whose stale has passed."""
        await self._pool.retrying(
            lambda conn: conn.execute(
                "DELETE FROM federation_positions WHERE node = $1 AND peer = $2 AND stale <= $3",
                self._node, peer, now_ms,
            ),
            name="prune_positions",
        )

    async def seen(self) -> dict[tuple[str, str], int]:
        """Highest sequence number accepted per ``(origin node, epoch)``."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch("SELECT origin, epoch, seq FROM federation_seen WHERE node = $1", self._node),
            name="seen",
        )
        return {(r["origin"], r["epoch"]): r["seq"] for r in rows}

    async def mark_seen(self, origin: str, epoch: str, seq: int) -> None:
        """Record ``seq`` as accepted from ``(origin, epoch)`` (a lower mark never replaces a higher one)."""
        await self._pool.retrying(
            lambda conn: conn.execute(
                "INSERT INTO federation_seen (node, origin, epoch, seq) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (node, origin, epoch) DO UPDATE SET seq = greatest(federation_seen.seq, excluded.seq)",
                self._node, origin, epoch, seq,
            ),
            name="mark_seen",
        )

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()
