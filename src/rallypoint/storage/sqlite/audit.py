"""SQLite rows behind the audit log (``security.audit`` owns the hash chain; this module only stores).

The table is append-only: there is no UPDATE or DELETE here, and triggers abort any that someone
issues by hand. After every append the newest (seq, hash) is also written to an anchor file next to
the database, so a tail cut off the table (triggers dropped first) is still noticed.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import sqlite3
from pathlib import Path

import msgspec

from rallypoint.errors import StorageError
from rallypoint.storage.base.audit import Anchor, AuditRow, RowBuilder
from rallypoint.storage.sqlite.worker import SqliteWorker, transaction

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        ts_ms     INTEGER NOT NULL,
        actor     TEXT    NOT NULL,
        action    TEXT    NOT NULL,
        target    TEXT    NOT NULL,
        detail    TEXT    NOT NULL,
        prev_hash TEXT    NOT NULL,
        hash      TEXT    NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    """,
)

_COLUMNS = "seq, ts_ms, actor, action, target, detail, prev_hash, hash"


class SqliteAuditRecords:
    """The audit table in a SQLite file plus its anchor file (``<db stem>.anchor``)."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="audit")
        self._anchor_path = path.with_suffix(".anchor")

    @property
    def path(self) -> Path:
        """The database file."""
        return self._worker.path

    @property
    def anchor_path(self) -> Path:
        """The anchor file."""
        return self._anchor_path

    async def append(self, build: RowBuilder) -> AuditRow:
        """Insert ``build(last_seq, last_hash)`` under the write lock, then refresh the anchor.

        Reading the tail and inserting happen in one ``BEGIN IMMEDIATE`` transaction, so entries
        chain correctly even when another process (the CLI next to a running server) appends too.
        """
        return await self._worker.run(_append, build, self._anchor_path)

    async def rows(self, *, since_seq: int = 0, limit: int = 1000) -> list[AuditRow]:
        """Rows with ``seq > since_seq`` in ``seq`` order, at most ``limit``."""
        return await self._worker.run(_rows, since_seq, limit)

    async def read_anchor(self) -> Anchor | None:
        """The anchor, or None if there is none; ``StorageError`` if it is unreadable."""
        return await self._worker.run(_read_anchor, self._anchor_path)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _append(db: sqlite3.Connection, build: RowBuilder, anchor_path: Path) -> AuditRow:
    def job() -> AuditRow:
        last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        row = build(0, None) if last is None else build(last[0], last[1])
        db.execute(f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", msgspec.structs.astuple(row))
        return row

    row = transaction(db, job)
    # After the commit: a crash in between leaves the anchor one entry behind, which verification
    # accepts; an anchor ahead of the table is what a truncation looks like.
    _advance_anchor(anchor_path, Anchor(seq=row.seq, hash=row.hash))
    return row


def _advance_anchor(path: Path, anchor: Anchor) -> None:
    """Write ``anchor`` unless the file already names a later entry.

    Several writers (processes of one node, or stores in one process) commit in seq order but reach
    this point in any order; under the lock the anchor only moves forward, so the last writer to get
    here cannot leave it on an older entry.
    """
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        with open(lock_path, "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = _read_anchor(None, path)
            except StorageError:
                current = None  # unreadable: replaced by a good one, as before
            if current is None or current.seq < anchor.seq:
                _write_anchor(path, anchor)
    except OSError as exc:
        raise StorageError(f"cannot lock audit anchor {path}: {exc}") from exc


def _rows(db: sqlite3.Connection, since_seq: int, limit: int) -> list[AuditRow]:
    cur = db.execute(f"SELECT {_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (since_seq, limit))
    return [AuditRow(*row) for row in cur]


def _write_anchor(path: Path, anchor: Anchor) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(msgspec.json.encode(anchor) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write audit anchor {path}: {exc}") from exc


def _read_anchor(_db: sqlite3.Connection | None, path: Path) -> Anchor | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read audit anchor {path}: {exc}") from exc
    try:
        return msgspec.json.decode(data, type=Anchor)
    except msgspec.DecodeError as exc:
        raise StorageError(f"audit anchor {path} is malformed: {exc}") from exc

