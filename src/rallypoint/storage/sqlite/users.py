"""SQLite rows behind the user store (``security.users`` holds the rules; this module only stores).

Names are unique without regard to case (``COLLATE NOCASE``), so ``alice`` and ``Alice`` can never
be two different accounts; the spelling given at creation is kept.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from rallypoint.storage.base.users import UserRecord, check_user_changes
from rallypoint.storage.sqlite.worker import SqliteWorker, transaction

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        name            TEXT    NOT NULL PRIMARY KEY COLLATE NOCASE,
        role            TEXT    NOT NULL,
        groups_in       TEXT    NOT NULL,
        groups_out      TEXT    NOT NULL,
        password_hash   TEXT,
        disabled        INTEGER NOT NULL DEFAULT 0,
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL,
        failed_logins   INTEGER NOT NULL DEFAULT 0,
        locked_until_ms INTEGER
    );
    """,
    # Counts account changes (not lock bookkeeping) for ``stamp``: exact, whichever process wrote.
    """
    CREATE TABLE revision (n INTEGER NOT NULL);
    INSERT INTO revision (n) VALUES (0);
    CREATE TRIGGER users_added AFTER INSERT ON users BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER users_changed AFTER UPDATE OF role, groups_in, groups_out, password_hash, disabled ON users
    BEGIN UPDATE revision SET n = n + 1; END;
    """,
)

_COLUMNS = (
    "name, role, groups_in, groups_out, password_hash, disabled, created_ms, updated_ms,"
    " failed_logins, locked_until_ms"
)
class SqliteUserRecords:
    """``UserRecords`` in a SQLite file; every method is one job on the store's worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="user")

    @property
    def path(self) -> Path:
        """The database file."""
        return self._worker.path

    async def insert(self, record: UserRecord) -> bool:
        """Insert ``record``; False (and nothing written) if the name is taken."""
        return await self._worker.run(_insert, _to_row(record))

    async def get(self, name: str) -> UserRecord | None:
        """The account called ``name`` (any case), or None."""
        return await self._worker.run(_get, name)

    async def list(self) -> list[UserRecord]:
        """Every account, ordered by name."""
        return await self._worker.run(_list)

    async def update(self, name: str, changes: dict[str, Any], *, now_ms: int) -> UserRecord | None:
        """Set the given columns and ``updated_ms``; the new record, or None if there is no such account."""
        check_user_changes(changes)
        values = {k: _encode_value(k, v) for k, v in changes.items()}
        return await self._worker.run(_update, name, values, now_ms)

    async def record_failure(
        self, name: str, *, now_ms: int, max_failures: int, lock_ms: int
    ) -> UserRecord | None:
        """Count one failed login; at ``max_failures`` in a row, lock until ``now_ms + lock_ms``.

        The counter restarts at zero when the lock is applied, so after the lock expires the account
        gets ``max_failures`` fresh attempts. Done in one job, so concurrent failures all count.
        """
        return await self._worker.run(_record_failure, name, now_ms, max_failures, lock_ms)

    async def record_success(self, name: str, *, password_hash: str | None = None) -> None:
        """Reset the failure counter and any lock; optionally replace the hash (rehash on login)."""
        await self._worker.run(_record_success, name, password_hash)

    async def stamp(self) -> object:
        """The account revision: grows with every insert and administrative update, from any process."""
        return await self._worker.run(_revision)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _encode_groups(groups: Any) -> str:
    return msgspec.json.encode(sorted(groups)).decode()


def _encode_value(column: str, value: Any) -> Any:
    if column in ("groups_in", "groups_out"):
        return _encode_groups(value)
    if column == "disabled":
        return int(bool(value))
    return value


def _to_row(r: UserRecord) -> tuple[Any, ...]:
    return (
        r.name, r.role, _encode_groups(r.groups_in), _encode_groups(r.groups_out), r.password_hash,
        int(r.disabled), r.created_ms, r.updated_ms, r.failed_logins, r.locked_until_ms,
    )


def _from_row(row: tuple[Any, ...]) -> UserRecord:
    name, role, g_in, g_out, pw, disabled, created, updated, failed, locked = row
    return UserRecord(
        name=name,
        role=role,
        groups_in=frozenset(msgspec.json.decode(g_in, type=list[str])),
        groups_out=frozenset(msgspec.json.decode(g_out, type=list[str])),
        password_hash=pw,
        disabled=bool(disabled),
        created_ms=created,
        updated_ms=updated,
        failed_logins=failed,
        locked_until_ms=locked,
    )


def _insert(db: sqlite3.Connection, row: tuple[Any, ...]) -> bool:
    cur = db.execute(
        f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING", row
    )
    return cur.rowcount == 1


def _get(db: sqlite3.Connection, name: str) -> UserRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
    return None if row is None else _from_row(row)


def _list(db: sqlite3.Connection) -> list[UserRecord]:
    return [_from_row(row) for row in db.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name")]


def _update(db: sqlite3.Connection, name: str, values: dict[str, Any], now_ms: int) -> UserRecord | None:
    # Column names come from the _UPDATABLE whitelist, never from callers' data.
    assignments = ", ".join(f"{column} = ?" for column in values)

    def job() -> UserRecord | None:
        cur = db.execute(
            f"UPDATE users SET {assignments}, updated_ms = ? WHERE name = ?", [*values.values(), now_ms, name]
        )
        return _get(db, name) if cur.rowcount else None

    return transaction(db, job)


def _record_failure(
    db: sqlite3.Connection, name: str, now_ms: int, max_failures: int, lock_ms: int
) -> UserRecord | None:
    def job() -> UserRecord | None:
        cur = db.execute(
            "UPDATE users SET"
            " locked_until_ms = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until_ms END,"
            " failed_logins = CASE WHEN failed_logins + 1 >= ? THEN 0 ELSE failed_logins + 1 END"
            " WHERE name = ?",
            (max_failures, now_ms + lock_ms, max_failures, name),
        )
        return _get(db, name) if cur.rowcount else None

    return transaction(db, job)


def _record_success(db: sqlite3.Connection, name: str, password_hash: str | None) -> None:
    if password_hash is None:
        db.execute("UPDATE users SET failed_logins = 0, locked_until_ms = NULL WHERE name = ?", (name,))
    else:
        db.execute(
            "UPDATE users SET failed_logins = 0, locked_until_ms = NULL, password_hash = ? WHERE name = ?",
            (password_hash, name),
        )


def _revision(db: sqlite3.Connection) -> int:
    (n,) = db.execute("SELECT n FROM revision").fetchone()
    return int(n)
