"""Identity adapters: None, bytes and bool are bound from sqlite3's registry and stored as before."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rallypoint.storage.sqlite.binding import register_identity_adapters
from rallypoint.storage.sqlite.worker import SqliteWorker

KINDS = (type(None), bytes, bool)
Registry = dict[tuple[type, type], Any]


@pytest.fixture
def registry() -> Iterator[Registry]:
    """sqlite3's adapter registry, put back as it was afterwards (it is process-wide)."""
    saved = dict(sqlite3.adapters)
    yield sqlite3.adapters
    sqlite3.adapters.clear()
    sqlite3.adapters.update(saved)


def _rows(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    db.execute("CREATE TABLE t (n, b, f, g)")
    db.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (None, b"<event/>", True, False))
    return db.execute("SELECT n, typeof(n), b, typeof(b), f, typeof(f), g, typeof(g) FROM t").fetchall()


def test_values_are_stored_as_without_the_adapters(registry: Registry) -> None:
    for kind in KINDS:
        registry.pop((kind, sqlite3.PrepareProtocol), None)
    with sqlite3.connect(":memory:") as db:
        without = _rows(db)
    register_identity_adapters()
    assert all((kind, sqlite3.PrepareProtocol) in registry for kind in KINDS)
    with sqlite3.connect(":memory:") as db:
        with_them = _rows(db)
    assert with_them == without == [(None, "null", b"<event/>", "blob", 1, "integer", 0, "integer")]


def test_an_adapter_registered_elsewhere_is_left_alone(registry: Registry) -> None:
    def mine(value: bool) -> str:
        return "yes" if value else "no"

    sqlite3.register_adapter(bool, mine)
    register_identity_adapters()
    register_identity_adapters()  # idempotent
    assert registry[(bool, sqlite3.PrepareProtocol)] is mine


async def test_a_store_connection_registers_them(tmp_path: Path, registry: Registry) -> None:
    for kind in KINDS:
        registry.pop((kind, sqlite3.PrepareProtocol), None)
    worker = SqliteWorker(tmp_path / "x.db", migrations=(), what="test")
    try:
        assert await worker.run(lambda db: db.execute("SELECT 1").fetchone()) == (1,)
    finally:
        await worker.close()
    assert all((kind, sqlite3.PrepareProtocol) in registry for kind in KINDS)
