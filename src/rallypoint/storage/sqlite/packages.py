"""SQLite rows describing stored data packages and files (the blobs themselves live in ``storage.files``).

The content is stored once per SHA-256, but its description is kept per upload: every uploader
(submitter and write groups) has its own row with its own name, keywords, tool and time. Two
groups holding the same bytes therefore never see each other's names, keywords or submitters;
the blob goes only when the last row for its hash does.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from rallypoint.storage.base.packages import PackageRecord, check_package_changes
from rallypoint.storage.sqlite.worker import SqliteWorker, transaction

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE packages (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        hash          TEXT    NOT NULL UNIQUE,
        uid           TEXT    NOT NULL,
        name          TEXT    NOT NULL,
        mime          TEXT    NOT NULL,
        size          INTEGER NOT NULL,
        keywords      TEXT    NOT NULL,
        tool          TEXT    NOT NULL,
        creator_uid   TEXT    NOT NULL,
        submitter     TEXT    NOT NULL,
        groups        TEXT    NOT NULL,
        submitted_ms  INTEGER NOT NULL,
        expiration_ms INTEGER
    );
    CREATE INDEX packages_tool ON packages (tool);
    """,
    # One row per upload instead of one per hash: the UNIQUE constraint on ``hash`` goes (SQLite
    # cannot drop it in place, hence the copy). Existing rows keep their ids and become one upload each.
    """
    CREATE TABLE package_uploads (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        hash          TEXT    NOT NULL,
        uid           TEXT    NOT NULL,
        name          TEXT    NOT NULL,
        mime          TEXT    NOT NULL,
        size          INTEGER NOT NULL,
        keywords      TEXT    NOT NULL,
        tool          TEXT    NOT NULL,
        creator_uid   TEXT    NOT NULL,
        submitter     TEXT    NOT NULL,
        groups        TEXT    NOT NULL,
        submitted_ms  INTEGER NOT NULL,
        expiration_ms INTEGER
    );
    INSERT INTO package_uploads (id, hash, uid, name, mime, size, keywords, tool, creator_uid, submitter, groups,
                                 submitted_ms, expiration_ms)
        SELECT id, hash, uid, name, mime, size, keywords, tool, creator_uid, submitter, groups, submitted_ms,
               expiration_ms FROM packages;
    DROP TABLE packages;
    ALTER TABLE package_uploads RENAME TO packages;
    CREATE UNIQUE INDEX packages_uploader ON packages (hash, submitter, groups);
    CREATE INDEX packages_tool ON packages (tool);
    """,
)

_COLUMNS = (
    "id, hash, uid, name, mime, size, keywords, tool, creator_uid, submitter, groups, submitted_ms, expiration_ms"
)


class SqlitePackageStore:
    """Package metadata in a SQLite file; every method is one job on the store's worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="package")

    async def add(self, record: PackageRecord) -> tuple[PackageRecord, bool]:
        """Insert ``record`` as a new upload unless its uploader (submitter and groups) has a row for the hash.

        A repeated upload leaves that row as it is: a client re-sending a file often sends none of
        its description, and the tool is changed through its own call. Returns the stored row and
        True when it was new.
        """
        return await self._worker.run(_add, record)

    async def rows(self, digest: str) -> list[PackageRecord]:
        """Every upload row of ``digest``, oldest first."""
        return await self._worker.run(_rows, digest)

    async def search(self, *, keyword: str | None = None, tool: str | None = None) -> list[PackageRecord]:
        """Rows carrying ``keyword`` and/or ``tool`` (None: any), oldest first."""
        return await self._worker.run(_search, keyword, tool)

    async def update(self, row_id: int, **changes: Any) -> PackageRecord | None:
        """Set ``tool``, ``keywords`` or ``expiration_ms`` on one row; returns it, or None if absent."""
        check_package_changes(changes)
        if "keywords" in changes:
            changes["keywords"] = _join(changes["keywords"])
        return await self._worker.run(_update, row_id, changes)

    async def delete(self, row_ids: list[int]) -> tuple[int, int]:
        """Remove the given rows; returns ``(rows removed, rows left for the same hashes)``."""
        return await self._worker.run(_delete, row_ids)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _join(values: tuple[str, ...] | list[str]) -> str:
    # Newline-separated: keywords and group names never contain one (callers validate).
    return "\n".join(values)


def _split(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split("\n") if v)


def _row(row: tuple[Any, ...]) -> PackageRecord:
    (id_, digest, uid, name, mime, size, keywords, tool, creator, submitter, groups, submitted, expiration) = row
    return PackageRecord(
        id=id_, hash=digest, uid=uid, name=name, mime=mime, size=size, keywords=_split(keywords), tool=tool,
        creator_uid=creator, submitter=submitter, groups=frozenset(_split(groups)), submitted_ms=submitted,
        expiration_ms=expiration,
    )


def _rows(db: sqlite3.Connection, digest: str) -> list[PackageRecord]:
    return [_row(r) for r in db.execute(f"SELECT {_COLUMNS} FROM packages WHERE hash = ? ORDER BY id", (digest,))]


def _get_id(db: sqlite3.Connection, row_id: int) -> PackageRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM packages WHERE id = ?", (row_id,)).fetchone()
    return None if row is None else _row(row)


def _add(db: sqlite3.Connection, record: PackageRecord) -> tuple[PackageRecord, bool]:
    groups = _join(tuple(sorted(record.groups)))

    def work() -> tuple[PackageRecord, bool]:
        found = db.execute(
            f"SELECT {_COLUMNS} FROM packages WHERE hash = ? AND submitter = ? AND groups = ?",
            (record.hash, record.submitter, groups),
        ).fetchone()
        if found is not None:
            return _row(found), False
        cur = db.execute(
            "INSERT INTO packages (hash, uid, name, mime, size, keywords, tool, creator_uid, submitter, groups,"
            " submitted_ms, expiration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.hash, record.uid, record.name, record.mime, record.size, _join(record.keywords), record.tool,
                record.creator_uid, record.submitter, groups, record.submitted_ms, record.expiration_ms,
            ),
        )
        return msgspec.structs.replace(record, id=int(cur.lastrowid or 0), groups=frozenset(record.groups)), True

    return transaction(db, work)


def _search(db: sqlite3.Connection, keyword: str | None, tool: str | None) -> list[PackageRecord]:
    if tool is None:
        rows = db.execute(f"SELECT {_COLUMNS} FROM packages ORDER BY id").fetchall()
    else:
        rows = db.execute(f"SELECT {_COLUMNS} FROM packages WHERE tool = ? ORDER BY id", (tool,)).fetchall()
    out = [_row(r) for r in rows]
    if keyword is not None:
        out = [r for r in out if keyword in r.keywords]
    return out


def _update(db: sqlite3.Connection, row_id: int, changes: dict[str, Any]) -> PackageRecord | None:
    def work() -> PackageRecord | None:
        if changes:
            # Column names come from the fixed allow-list in ``update``.
            assignments = ", ".join(f"{name} = ?" for name in changes)
            db.execute(f"UPDATE packages SET {assignments} WHERE id = ?", (*changes.values(), row_id))
        return _get_id(db, row_id)

    return transaction(db, work)


def _delete(db: sqlite3.Connection, row_ids: list[int]) -> tuple[int, int]:
    def work() -> tuple[int, int]:
        marks = ", ".join("?" for _ in row_ids)
        hashes = [h for (h,) in db.execute(f"SELECT DISTINCT hash FROM packages WHERE id IN ({marks})", row_ids)]
        removed = db.execute(f"DELETE FROM packages WHERE id IN ({marks})", row_ids).rowcount
        left = 0
        for digest in hashes:
            (count,) = db.execute("SELECT COUNT(*) FROM packages WHERE hash = ?", (digest,)).fetchone()
            left += count
        return removed, left

    if not row_ids:
        return 0, 0
    return transaction(db, work)
