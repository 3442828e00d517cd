"""Fixtures for the contract tests: every backend (storage, bus) runs the same suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rallypoint.storage.base import EventStore
from rallypoint.storage.factory import Stores, open_stores
from rallypoint.storage.memory import MemoryEventStore
from rallypoint.storage.sqlite.events import SqliteEventStore
from tests.support.nats import nats_server  # noqa: F401 (fixture for the bus contract tests)
from tests.support.postgis import with_options
from tests.support.stored import MakeEvent, make_event


@pytest.fixture
def ev() -> MakeEvent:
    return make_event


@pytest.fixture(params=["memory", "sqlite", "postgres", "postgres-postgis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventStore]:
    backend: EventStore
    match request.param:
        case "memory":
            backend = MemoryEventStore()
        case "sqlite":
            backend = SqliteEventStore(tmp_path / "events.db")
        case "postgres":
            from rallypoint.storage.postgres.events import PostgresEventStore

            # One database per test: the contract assumes an empty store. Areas through the box index.
            database = request.getfixturevalue("postgres_database")
            backend = PostgresEventStore(with_options(await database.fresh(), postgis="off"))
        case _:
            from rallypoint.storage.postgres.events import PostgresEventStore

            # Areas through the PostGIS index (skipped, saying why, where the extension is absent).
            database = request.getfixturevalue("postgis_database")
            backend = PostgresEventStore(with_options(await database.fresh(), postgis="require"))
    try:
        yield backend
    finally:
        await backend.close()


# --- The other stores: each suite runs over every backend that keeps that store -------------------------------------
def _backends(store: str) -> list[str]:
    from rallypoint.storage.factory import POSTGRES_STORES

    return ["sqlite", "postgres"] if store in POSTGRES_STORES else ["sqlite"]


async def stores_for(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    """The stores of one backend, through the factory (a fresh PostgreSQL database each time)."""
    if request.param == "sqlite":
        return open_stores("sqlite://", tmp_path)
    database = request.getfixturevalue("postgres_database")
    return open_stores(await database.fresh(), tmp_path)


def _records_fixture(store: str) -> Any:
    """A fixture yielding ``Stores.<store>()`` of each backend that keeps ``store``, closed afterwards."""

    @pytest.fixture(params=_backends(store))
    async def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
        backend = getattr(await stores_for(request, tmp_path), store)()
        try:
            yield backend
        finally:
            await backend.close()

    return fixture


user_records = _records_fixture("users")
token_records = _records_fixture("tokens")
feed_records = _records_fixture("feeds")
mailbox_records = _records_fixture("mailbox")
package_records = _records_fixture("packages")
federation_records = _records_fixture("federation")
mission_records = _records_fixture("missions")
video_records = _records_fixture("video")


@pytest.fixture(params=_backends("audit"))
async def audit_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    """A factory (not one store): the audit suite opens several writers on one log."""
    return await stores_for(request, tmp_path)
