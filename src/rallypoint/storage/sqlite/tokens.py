"""SQLite rows behind API access tokens (``security.tokens`` holds the rules; this module only stores).

Only the SHA-256 digest of a token's id is kept, so a copy of the file grants nothing. ``session``
groups a login with the tokens renewed from it, so that logging out ends all of them at once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rallypoint.storage.base.tokens import TokenRecord
from rallypoint.storage.sqlite.worker import SqliteWorker

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tokens (
        digest      BLOB    NOT NULL PRIMARY KEY,
        principal   TEXT    NOT NULL COLLATE NOCASE,
        issued_ms   INTEGER NOT NULL,
        expires_ms  INTEGER NOT NULL,
        revoked_ms  INTEGER
    );
    CREATE INDEX tokens_principal ON tokens (principal);
    CREATE INDEX tokens_expires ON tokens (expires_ms);
    """,
    """
    ALTER TABLE tokens ADD COLUMN session TEXT;
    CREATE INDEX tokens_session ON tokens (session);
    """,
)

_COLUMNS = "digest, principal, issued_ms, expires_ms, revoked_ms, session"


class SqliteTokenRecords:
    """Token rows in a SQLite file (``DATA_DIR/tokens.db`` by convention); one worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="token")

    @property
    def path(self) -> Path:
        """The database file."""
        return self._worker.path

    async def insert(self, record: TokenRecord) -> None:
        """Store a newly issued token."""
        await self._worker.run(_insert, record)

    async def get(self, digest: bytes) -> TokenRecord | None:
        """The token with this digest, revoked or not, or None."""
        return await self._worker.run(_get, digest)

    async def revoke(self, digest: bytes, *, now_ms: int) -> bool:
        """Mark one live token revoked; False if it is unknown or already revoked."""
        return await self._worker.run(_revoke, digest, now_ms)

    async def revoke_session(self, session: str, *, now_ms: int) -> int:
        """Revoke every live token of one login session (a login and its renewals); returns how many."""
        return await self._worker.run(_revoke_session, session, now_ms)

    async def revoke_principal(self, principal: str, *, now_ms: int) -> int:
        """Revoke every live token of ``principal`` (any case); returns how many."""
        return await self._worker.run(_revoke_principal, principal, now_ms)

    async def prune(self, *, now_ms: int) -> int:
        """Delete tokens that expired before ``now_ms``; returns how many."""
        return await self._worker.run(_prune, now_ms)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _insert(db: sqlite3.Connection, r: TokenRecord) -> None:
    db.execute(
        f"INSERT INTO tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (r.digest, r.principal, r.issued_ms, r.expires_ms, r.revoked_ms, r.session),
    )


def _get(db: sqlite3.Connection, digest: bytes) -> TokenRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM tokens WHERE digest = ?", (digest,)).fetchone()
    if row is None:
        return None
    return TokenRecord(digest=bytes(row[0]), principal=row[1], issued_ms=row[2], expires_ms=row[3], revoked_ms=row[4],
                       session=row[5])


def _revoke(db: sqlite3.Connection, digest: bytes, now_ms: int) -> bool:
    cur = db.execute("UPDATE tokens SET revoked_ms = ? WHERE digest = ? AND revoked_ms IS NULL", (now_ms, digest))
    return cur.rowcount > 0


def _revoke_session(db: sqlite3.Connection, session: str, now_ms: int) -> int:
    cur = db.execute(
        "UPDATE tokens SET revoked_ms = ? WHERE session = ? AND revoked_ms IS NULL AND expires_ms > ?",
        (now_ms, session, now_ms),
    )
    return cur.rowcount


def _revoke_principal(db: sqlite3.Connection, principal: str, now_ms: int) -> int:
    cur = db.execute(
        "UPDATE tokens SET revoked_ms = ? WHERE principal = ? AND revoked_ms IS NULL AND expires_ms > ?",
        (now_ms, principal, now_ms),
    )
    return cur.rowcount


def _prune(db: sqlite3.Connection, now_ms: int) -> int:
    return db.execute("DELETE FROM tokens WHERE expires_ms <= ?", (now_ms,)).rowcount
