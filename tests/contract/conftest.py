"""Fixtures for the contract tests: every backend (storage, bus) runs the same suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rallypoint.storage.base import EventStore
from rallypoint.storage.memory import MemoryEventStore
from rallypoint.storage.sqlite.events import SqliteEventStore
from tests.support.nats import nats_server  # noqa: F401 (fixture for the bus contract tests)
from tests.support.stored import MakeEvent, make_event


@pytest.fixture
def ev() -> MakeEvent:
    return make_event


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventStore]:
    backend: EventStore
    match request.param:
        case "memory":
            backend = MemoryEventStore()
        case "sqlite":
            backend = SqliteEventStore(tmp_path / "events.db")
        case _:
            from rallypoint.storage.postgres.events import PostgresEventStore

            # One database per test: the contract assumes an empty store.
            database = request.getfixturevalue("postgres_database")
            backend = PostgresEventStore(await database.fresh())
    try:
        yield backend
    finally:
        await backend.close()
