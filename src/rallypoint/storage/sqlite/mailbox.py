"""SQLite rows behind store-and-forward (``services.mailbox`` holds the rules; this module only stores).

Tables:

* ``messages``: one row per kept event (``seq`` orders delivery), its XML, the sender's write groups,
  priority, creation and expiry times.
* ``pending``: which receiving identity still has to get which message (one row per recipient).
* ``cursors``: per identity, the highest ``seq`` at or below which everything is delivered; a pending
  row at or below the cursor is delivered, whatever else the file says (this is what makes delivery
  exactly-once across restarts even when a batch that deleted pending rows never ran). A message
  delivered out of order, above the cursor, is marked delivered by deleting its own pending row.
* ``recipients``: every receiver seen so far (uid, callsign, principal, read groups, last seen) so
  addresses can be resolved while it is offline.
* ``meta``: the sequence high-water mark, so sequence numbers never go backwards after a purge.
* ``seen``: addressed messages of other nodes this node delivered to an identity (uid and time of
  the message), until they expire, so a restart does not write them to that identity again.

The whole state is loaded once at start (:func:`load_state`, synchronous: it runs before the server
accepts connections), then changed only through :meth:`SqliteMailboxStore.apply` batches.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from rallypoint.storage.base.mailbox import MailboxBatch, MailboxState, MailRecord, RecipientRecord, SeenRecord
from rallypoint.storage.sqlite import schema
from rallypoint.storage.sqlite.worker import SqliteWorker, apply_migrations, transaction

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE messages (
        seq         INTEGER PRIMARY KEY,
        xml         BLOB    NOT NULL,
        groups      TEXT    NOT NULL,
        priority    INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL,
        expires_ms  INTEGER NOT NULL
    );
    CREATE INDEX messages_expires ON messages (expires_ms);
    CREATE TABLE pending (
        identity    TEXT    NOT NULL,
        seq         INTEGER NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
        PRIMARY KEY (identity, seq)
    ) WITHOUT ROWID;
    CREATE INDEX pending_seq ON pending (seq);
    CREATE TABLE cursors (
        identity    TEXT    PRIMARY KEY,
        last_seq    INTEGER NOT NULL
    );
    CREATE TABLE recipients (
        identity     TEXT    PRIMARY KEY,
        uid          TEXT,
        callsign     TEXT,
        principal    TEXT,
        read_groups  TEXT    NOT NULL,
        last_seen_ms INTEGER NOT NULL
    );
    CREATE TABLE meta (
        key         TEXT    PRIMARY KEY,
        value       INTEGER NOT NULL
    );
    """,
    """
    CREATE TABLE seen (
        identity    TEXT    NOT NULL,
        uid         TEXT    NOT NULL,
        time        INTEGER NOT NULL,
        expires_ms  INTEGER NOT NULL,
        PRIMARY KEY (identity, uid, time)
    ) WITHOUT ROWID;
    CREATE INDEX seen_expires ON seen (expires_ms);
    """,
)

_GROUPS = msgspec.json.Encoder()
_GROUPS_DECODER = msgspec.json.Decoder(list[str])


def load_state(path: Path, now_ms: int) -> MailboxState:
    """Read the deliverable state (creates the file on first run); runs in the calling thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    try:
        schema.configure(db)
        apply_migrations(db, _MIGRATIONS, what="mailbox")
        return _read_state(db, now_ms)
    finally:
        db.close()


class SqliteMailboxStore:
    """``MailboxRecords`` in a SQLite file (``DATA_DIR/mailbox.db`` by convention); one worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="mailbox")

    @property
    def path(self) -> Path:
        """The database file."""
        return self._worker.path

    def load_state(self, now_ms: int) -> MailboxState:
        """Everything still deliverable at ``now_ms``, read in the calling thread (before serving)."""
        return load_state(self.path, now_ms)

    async def apply(self, batch: MailboxBatch) -> None:
        """Write one batch atomically."""
        await self._worker.run(_apply, batch)

    async def purge(self, now_ms: int) -> int:
        """Delete expired and fully delivered messages and expired seen rows; returns how many message rows went."""
        return await self._worker.run(_purge, now_ms)

    async def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        await self._worker.close()


def _read_state(db: sqlite3.Connection, now_ms: int) -> MailboxState:
    cursors = {identity: int(seq) for identity, seq in db.execute("SELECT identity, last_seq FROM cursors")}
    high = 0
    row = db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
    if row is not None:
        high = int(row[0])
    (max_msg,) = db.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()
    high = max(high, int(max_msg), max(cursors.values(), default=0))
    mails: dict[int, MailRecord] = {}
    pending: dict[str, list[MailRecord]] = {}
    rows = db.execute(
        "SELECT p.identity, m.seq, m.xml, m.groups, m.priority, m.created_ms, m.expires_ms "
        "FROM pending p JOIN messages m ON m.seq = p.seq "
        "LEFT JOIN cursors c ON c.identity = p.identity "
        "WHERE m.expires_ms > ? AND p.seq > coalesce(c.last_seq, 0) "
        "ORDER BY p.identity, p.seq",
        (now_ms,),
    )
    for identity, seq, xml, groups, priority, created, expires in rows:
        mail = mails.get(seq)
        if mail is None:
            mail = mails[seq] = MailRecord(
                seq=int(seq),
                xml=bytes(xml),
                groups=frozenset(_GROUPS_DECODER.decode(groups)),
                priority=int(priority),
                created_ms=int(created),
                expires_ms=int(expires),
            )
        pending.setdefault(identity, []).append(mail)
    recipients = [
        RecipientRecord(
            identity=identity,
            uid=uid,
            callsign=callsign,
            principal=principal,
            read_groups=frozenset(_GROUPS_DECODER.decode(groups)),
            last_seen_ms=int(seen),
        )
        for identity, uid, callsign, principal, groups, seen in db.execute(
            "SELECT identity, uid, callsign, principal, read_groups, last_seen_ms FROM recipients ORDER BY last_seen_ms"
        )
    ]
    seen = [
        SeenRecord(identity=identity, uid=uid, time=int(time), expires_ms=int(expires))
        for identity, uid, time, expires in db.execute(
            "SELECT identity, uid, time, expires_ms FROM seen WHERE expires_ms > ? ORDER BY identity, time, uid",
            (now_ms,),
        )
    ]
    return MailboxState(next_seq=high + 1, pending=pending, cursors=cursors, recipients=recipients, seen=seen)


def _apply(db: sqlite3.Connection, batch: MailboxBatch) -> None:
    def write() -> None:
        high = 0
        for mail, identities in batch.mails:
            db.execute(
                "INSERT OR IGNORE INTO messages (seq, xml, groups, priority, created_ms, expires_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    mail.seq,
                    mail.xml,
                    _GROUPS.encode(sorted(mail.groups)).decode(),
                    mail.priority,
                    mail.created_ms,
                    mail.expires_ms,
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO pending (identity, seq) VALUES (?, ?)",
                [(identity, mail.seq) for identity in identities],
            )
            high = max(high, mail.seq)
        for identity, seq in batch.cursors:
            db.execute(
                "INSERT INTO cursors (identity, last_seq) VALUES (?, ?) "
                "ON CONFLICT (identity) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
                (identity, seq),
            )
            db.execute("DELETE FROM pending WHERE identity = ? AND seq <= ?", (identity, seq))
            high = max(high, seq)
        db.executemany("DELETE FROM pending WHERE identity = ? AND seq = ?", batch.delivered)
        for rec in batch.recipients:
            db.execute(
                "INSERT INTO recipients (identity, uid, callsign, principal, read_groups, last_seen_ms) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (identity) DO UPDATE SET uid = excluded.uid, "
                "callsign = excluded.callsign, principal = excluded.principal, "
                "read_groups = excluded.read_groups, last_seen_ms = excluded.last_seen_ms",
                (
                    rec.identity,
                    rec.uid,
                    rec.callsign,
                    rec.principal,
                    _GROUPS.encode(sorted(rec.read_groups)).decode(),
                    rec.last_seen_ms,
                ),
            )
        for identity in batch.forget:
            db.execute("DELETE FROM recipients WHERE identity = ?", (identity,))
            db.execute("DELETE FROM pending WHERE identity = ?", (identity,))
            db.execute("DELETE FROM cursors WHERE identity = ?", (identity,))
        db.executemany(
            "INSERT OR IGNORE INTO seen (identity, uid, time, expires_ms) VALUES (?, ?, ?, ?)",
            [(r.identity, r.uid, r.time, r.expires_ms) for r in batch.seen],
        )
        if high:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_seq', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                (high,),
            )

    transaction(db, write)


def _purge(db: sqlite3.Connection, now_ms: int) -> int:
    def purge() -> int:
        expired = db.execute("DELETE FROM messages WHERE expires_ms <= ?", (now_ms,)).rowcount
        db.execute("DELETE FROM seen WHERE expires_ms <= ?", (now_ms,))
        db.execute(
            "DELETE FROM pending WHERE seq <= (SELECT last_seq FROM cursors WHERE cursors.identity = pending.identity)"
        )
        orphans = db.execute(
            "DELETE FROM messages WHERE NOT EXISTS (SELECT 1 FROM pending WHERE pending.seq = messages.seq)"
        ).rowcount
        return int(expired) + int(orphans)

    return transaction(db, purge)
