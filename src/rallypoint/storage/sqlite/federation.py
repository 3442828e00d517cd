"""SQLite rows behind federation's durable outbound queues and inbound de-duplication.

Tables:

* ``outbound``: one row per priority message waiting for a peer's acknowledgement, keyed by
  ``(peer, seq)``; ``payload`` is the serialized ``FederatedEvent``.
* ``peers``: per peer, the next sequence number to assign (never goes backwards, even after every
  row is acknowledged and deleted), the highest sequence number the peer acknowledged, and the
  queue's ``epoch``: a random id created with the queue, so a queue created afresh (file lost or
  deleted) is told apart from the one whose numbers the peer remembers. Queues created before
  epochs existed keep the empty epoch until they are recreated. A queue found to be older than
  the peer's mark (``federation.db`` restored from a backup) starts a new epoch in place
  (``new_epoch``): its waiting rows are renumbered from 1 and the counters start again.
* ``seen``: per origin node and epoch, the highest sequence number already accepted from it: a
  message at or below it is a retransmission and is dropped (this is what makes delivery
  exactly-once). Marks written before epochs existed belong to the empty epoch.
* ``positions``: per peer, the latest position (or other coalesced report) of each uid, one row per
  uid, overwritten by every newer report; ``ord`` keeps the order of the latest reports, ``stale``
  lets a restart skip what expired while the server was down.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rallypoint.storage.base.federation import PeerBacklog
from rallypoint.storage.sqlite.worker import SqliteWorker, transaction

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE outbound (
        peer      TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        payload   BLOB    NOT NULL,
        PRIMARY KEY (peer, seq)
    ) WITHOUT ROWID;
    CREATE TABLE peers (
        peer      TEXT    PRIMARY KEY,
        next_seq  INTEGER NOT NULL,
        acked     INTEGER NOT NULL
    );
    CREATE TABLE seen (
        origin    TEXT    PRIMARY KEY,
        seq       INTEGER NOT NULL
    );
    """,
    """
    CREATE TABLE positions (
        peer      TEXT    NOT NULL,
        uid       TEXT    NOT NULL,
        ord       INTEGER NOT NULL,
        stale     INTEGER NOT NULL,
        payload   BLOB    NOT NULL,
        PRIMARY KEY (peer, uid)
    ) WITHOUT ROWID;
    """,
    """
    ALTER TABLE peers ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
    CREATE TABLE seen_epochs (
        origin    TEXT    NOT NULL,
        epoch     TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        PRIMARY KEY (origin, epoch)
    ) WITHOUT ROWID;
    INSERT INTO seen_epochs (origin, epoch, seq) SELECT origin, '', seq FROM seen;
    DROP TABLE seen;
    ALTER TABLE seen_epochs RENAME TO seen;
    """,
)


class SqliteFederationStore:
    """Durable federation state in ``<data_dir>/federation/federation.db`` (one worker thread)."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="federation")

    async def backlog(self, peer: str, new_epoch: str) -> PeerBacklog:
        """Unacknowledged messages of ``peer`` (oldest first) and its counters; creates the queue with ``new_epoch``."""
        return await self._worker.run(_backlog, peer, new_epoch)

    async def append(self, peer: str, rows: list[tuple[int, bytes]]) -> None:
        """Persist newly queued messages (sequence numbers already assigned by the caller)."""
        if rows:
            await self._worker.run(_append, peer, rows)

    async def acknowledge(self, peer: str, seq: int) -> None:
        """The peer has everything up to ``seq``: forget those rows."""
        await self._worker.run(_ack, peer, seq)

    async def new_epoch(self, peer: str, epoch: str, rows: list[tuple[int, bytes]]) -> None:
        """Start queue ``epoch`` for ``peer`` holding ``rows`` (numbered from 1); the old queue's rows go."""
        await self._worker.run(_new_epoch, peer, epoch, rows)

    async def trim(self, peer: str, keep_after: int) -> None:
        """Drop rows at or below ``keep_after`` without an acknowledgement (queue overflow)."""
        await self._worker.run(_trim, peer, keep_after)

    async def positions(self, peer: str, now_ms: int) -> list[tuple[str, int, int, bytes]]:
        """Latest reports kept for ``peer`` as ``(uid, ord, stale, payload)`` in order; expired ones are deleted."""
        return await self._worker.run(_positions, peer, now_ms)

    async def save_positions(
        self, peer: str, upserts: list[tuple[str, int, int, bytes]], deletes: list[str]
    ) -> None:
        """Overwrite the latest report of each uid (``(uid, ord, stale, payload)``) and forget ``deletes``."""
        if upserts or deletes:
            await self._worker.run(_save_positions, peer, upserts, deletes)

    async def prune_positions(self, peer: str, now_ms: int) -> None:
        """Forget kept reports of ``peer`` whose stale has passed (they would never be sent)."""
        await self._worker.run(_prune_positions, peer, now_ms)

    async def seen(self) -> dict[tuple[str, str], int]:
        """Highest sequence number accepted per ``(origin node, epoch)``."""
        rows = await self._worker.run(lambda db: db.execute("SELECT origin, epoch, seq FROM seen").fetchall())
        return {(str(origin), str(epoch)): int(seq) for origin, epoch, seq in rows}

    async def mark_seen(self, origin: str, epoch: str, seq: int) -> None:
        """Record that ``seq`` of ``epoch`` from ``origin`` was accepted (only ever moves forward)."""
        await self._worker.run(_mark_seen, origin, epoch, seq)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _backlog(db: sqlite3.Connection, peer: str, new_epoch: str) -> PeerBacklog:
    row = db.execute("SELECT next_seq, acked, epoch FROM peers WHERE peer = ?", (peer,)).fetchone()
    created = row is None
    if row is None:
        # The queue starts here: its epoch is written before any message is numbered in it.
        db.execute("INSERT INTO peers (peer, next_seq, acked, epoch) VALUES (?, 1, 0, ?)", (peer, new_epoch))
        row = (1, 0, new_epoch)
    next_seq, acked, epoch = int(row[0]), int(row[1]), str(row[2])
    rows = db.execute(
        "SELECT seq, payload FROM outbound WHERE peer = ? AND seq > ? ORDER BY seq", (peer, acked)
    ).fetchall()
    return PeerBacklog(
        epoch=epoch, next_seq=next_seq, acked=acked, rows=tuple((int(s), bytes(p)) for s, p in rows),
        created=created,
    )


def _append(db: sqlite3.Connection, peer: str, rows: list[tuple[int, bytes]]) -> None:
    def work() -> None:
        db.executemany("INSERT OR REPLACE INTO outbound (peer, seq, payload) VALUES (?, ?, ?)",
                       [(peer, seq, payload) for seq, payload in rows])
        top = max(seq for seq, _ in rows) + 1
        db.execute(
            "INSERT INTO peers (peer, next_seq, acked) VALUES (?, ?, 0) "
            "ON CONFLICT (peer) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)",
            (peer, top),
        )

    transaction(db, work)


def _ack(db: sqlite3.Connection, peer: str, seq: int) -> None:
    def work() -> None:
        db.execute("DELETE FROM outbound WHERE peer = ? AND seq <= ?", (peer, seq))
        db.execute(
            "INSERT INTO peers (peer, next_seq, acked) VALUES (?, ?, ?) "
            "ON CONFLICT (peer) DO UPDATE SET acked = max(acked, excluded.acked)",
            (peer, seq + 1, seq),
        )

    transaction(db, work)


def _new_epoch(db: sqlite3.Connection, peer: str, epoch: str, rows: list[tuple[int, bytes]]) -> None:
    def work() -> None:
        db.execute("DELETE FROM outbound WHERE peer = ?", (peer,))
        db.executemany("INSERT INTO outbound (peer, seq, payload) VALUES (?, ?, ?)",
                       [(peer, seq, payload) for seq, payload in rows])
        top = max((seq for seq, _ in rows), default=0) + 1
        db.execute(
            "INSERT INTO peers (peer, next_seq, acked, epoch) VALUES (?, ?, 0, ?) "
            "ON CONFLICT (peer) DO UPDATE SET next_seq = excluded.next_seq, acked = 0, epoch = excluded.epoch",
            (peer, top, epoch),
        )

    transaction(db, work)


def _trim(db: sqlite3.Connection, peer: str, keep_after: int) -> None:
    db.execute("DELETE FROM outbound WHERE peer = ? AND seq <= ?", (peer, keep_after))


def _mark_seen(db: sqlite3.Connection, origin: str, epoch: str, seq: int) -> None:
    db.execute(
        "INSERT INTO seen (origin, epoch, seq) VALUES (?, ?, ?) "
        "ON CONFLICT (origin, epoch) DO UPDATE SET seq = max(seq, excluded.seq)",
        (origin, epoch, seq),
    )


def _positions(db: sqlite3.Connection, peer: str, now_ms: int) -> list[tuple[str, int, int, bytes]]:
    _prune_positions(db, peer, now_ms)
    rows = db.execute(
        "SELECT uid, ord, stale, payload FROM positions WHERE peer = ? ORDER BY ord", (peer,)
    ).fetchall()
    return [(str(uid), int(ord_), int(stale), bytes(payload)) for uid, ord_, stale, payload in rows]


def _prune_positions(db: sqlite3.Connection, peer: str, now_ms: int) -> None:
    db.execute("DELETE FROM positions WHERE peer = ? AND stale <= ?", (peer, now_ms))


def _save_positions(
    db: sqlite3.Connection, peer: str, upserts: list[tuple[str, int, int, bytes]], deletes: list[str]
) -> None:
    def work() -> None:
        db.executemany("DELETE FROM positions WHERE peer = ? AND uid = ?", [(peer, uid) for uid in deletes])
        db.executemany(
            "INSERT OR REPLACE INTO positions (peer, uid, ord, stale, payload) VALUES (?, ?, ?, ?, ?)",
            [(peer, uid, ord_, stale, payload) for uid, ord_, stale, payload in upserts],
        )

    transaction(db, work)
