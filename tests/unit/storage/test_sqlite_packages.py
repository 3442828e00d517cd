"""Package metadata rows: one per upload, and the migration from one row per hash."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rallypoint.storage.sqlite.packages import PackageRecord, SqlitePackageStore

DIGEST = "ab" * 32


def record(name: str, submitter: str, groups: tuple[str, ...], tool: str = "public") -> PackageRecord:
    return PackageRecord(hash=DIGEST, uid=f"uid-{name}", name=name, mime="text/plain", size=3, keywords=("k",),
                         tool=tool, creator_uid="", submitter=submitter, groups=frozenset(groups), submitted_ms=1)


async def test_each_uploader_has_its_own_row(tmp_path: Path) -> None:
    store = SqlitePackageStore(tmp_path / "packages.db")
    try:
        blue, created = await store.add(record("blue.zip", "b1", ("Blue",)))
        assert created
        red, created = await store.add(record("red.zip", "r1", ("Red",)))
        assert created and red.id != blue.id
        again, created = await store.add(record("renamed.zip", "b1", ("Blue",), tool="private"))
        assert not created and again == blue
        assert [(r.name, r.submitter, r.groups, r.tool) for r in await store.rows(DIGEST)] == [
            ("blue.zip", "b1", frozenset({"Blue"}), "public"), ("red.zip", "r1", frozenset({"Red"}), "public")]
        assert await store.delete([red.id]) == (1, 1)
        assert await store.delete([blue.id]) == (1, 0)
        assert await store.rows(DIGEST) == []
    finally:
        await store.close()


async def test_a_one_row_per_hash_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "packages.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE packages (
            id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE, uid TEXT NOT NULL, name TEXT NOT NULL,
            mime TEXT NOT NULL, size INTEGER NOT NULL, keywords TEXT NOT NULL, tool TEXT NOT NULL,
            creator_uid TEXT NOT NULL, submitter TEXT NOT NULL, groups TEXT NOT NULL, submitted_ms INTEGER NOT NULL,
            expiration_ms INTEGER);
        CREATE INDEX packages_tool ON packages (tool);
        PRAGMA user_version = 1;
    """)
    db.execute("INSERT INTO packages VALUES (7, ?, 'u7', 'old.zip', 'application/zip', 3, 'a\nb', 'private', 'c',"
               " 'alice', 'Red', 5, 99)", (DIGEST,))
    db.commit()
    db.close()
    store = SqlitePackageStore(path)
    try:
        (old,) = await store.rows(DIGEST)
        assert (old.id, old.name, old.keywords, old.tool, old.submitter, old.groups, old.expiration_ms) == (
            7, "old.zip", ("a", "b"), "private", "alice", frozenset({"Red"}), 99)
        _, created = await store.add(record("new.zip", "bob", ("Blue",)))
        assert created
        assert [r.name for r in await store.rows(DIGEST)] == ["old.zip", "new.zip"]
        assert [r.name for r in await store.search(tool="private")] == ["old.zip"]
    finally:
        await store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone() == (2,)
