"""SQLite rows describing stored data packages and files (the blobs themselves live in ``storage.files``).

One row per content hash: the same bytes uploaded twice are one package, and a second uploader's
groups are added to the row (they hold the content already, so sharing the row reveals nothing).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec

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
)

_COLUMNS = (
    "id, hash, uid, name, mime, size, keywords, tool, creator_uid, submitter, groups, submitted_ms, expiration_ms"
)


class PackageRecord(msgspec.Struct, frozen=True):
    """Metadata of one stored file. ``groups`` are the write groups of its uploaders."""

    hash: str
    uid: str
    name: str
    mime: str
    size: int
    keywords: tuple[str, ...]
    tool: str
    creator_uid: str
    submitter: str
    groups: tuple[str, ...]
    submitted_ms: int
    expiration_ms: int | None = None
    id: int = 0


class SqlitePackageStore:
    """Package metadata in a SQLite file; every method is one job on the store's worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="package")

    async def add(self, record: PackageRecord) -> tuple[PackageRecord, bool]:
        """Insert ``record``, or merge its groups into the existing row of the same hash.

        Returns the stored row and True when it was new.
        """
        return await self._worker.run(_add, record)

    async def get(self, digest: str) -> PackageRecord | None:
        """The row for ``digest``, or None."""
        return await self._worker.run(_get, digest)

    async def search(self, *, keyword: str | None = None, tool: str | None = None) -> list[PackageRecord]:
        """Rows carrying ``keyword`` and/or ``tool`` (None: any), oldest first."""
        return await self._worker.run(_search, keyword, tool)

    async def update(self, digest: str, **changes: Any) -> PackageRecord | None:
        """Set ``tool``, ``keywords`` or ``expiration_ms`` on a row; returns it, or None if absent."""
        allowed = {"tool", "keywords", "expiration_ms"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        if "keywords" in changes:
            changes["keywords"] = _join(changes["keywords"])
        return await self._worker.run(_update, digest, changes)

    async def delete(self, digest: str) -> bool:
        """Remove the row for ``digest``; True if it existed."""
        return await self._worker.run(_delete, digest)

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
        creator_uid=creator, submitter=submitter, groups=_split(groups), submitted_ms=submitted,
        expiration_ms=expiration,
    )


def _get(db: sqlite3.Connection, digest: str) -> PackageRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM packages WHERE hash = ?", (digest,)).fetchone()
    return None if row is None else _row(row)


def _add(db: sqlite3.Connection, record: PackageRecord) -> tuple[PackageRecord, bool]:
    def work() -> tuple[PackageRecord, bool]:
        existing = _get(db, record.hash)
        if existing is not None:
            merged = tuple(sorted(set(existing.groups) | set(record.groups)))
            if merged != existing.groups:
                db.execute("UPDATE packages SET groups = ? WHERE hash = ?", (_join(merged), record.hash))
            return msgspec.structs.replace(existing, groups=merged), False
        cur = db.execute(
            "INSERT INTO packages (hash, uid, name, mime, size, keywords, tool, creator_uid, submitter, groups,"
            " submitted_ms, expiration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.hash, record.uid, record.name, record.mime, record.size, _join(record.keywords), record.tool,
                record.creator_uid, record.submitter, _join(tuple(sorted(record.groups))), record.submitted_ms,
                record.expiration_ms,
            ),
        )
        return msgspec.structs.replace(record, id=int(cur.lastrowid or 0)), True

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


def _update(db: sqlite3.Connection, digest: str, changes: dict[str, Any]) -> PackageRecord | None:
    def work() -> PackageRecord | None:
        if changes:
            # Column names come from the fixed allow-list in ``update``.
            assignments = ", ".join(f"{name} = ?" for name in changes)
            db.execute(f"UPDATE packages SET {assignments} WHERE hash = ?", (*changes.values(), digest))
        return _get(db, digest)

    return transaction(db, work)


def _delete(db: sqlite3.Connection, digest: str) -> bool:
    return db.execute("DELETE FROM packages WHERE hash = ?", (digest,)).rowcount > 0
