"""Fixtures for the contract tests: every backend (storage, bus) runs the same suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rallypoint.storage.base import EventStore
from rallypoint.storage.base.federation import FederationRecords
from rallypoint.storage.base.mailbox import MailboxRecords
from rallypoint.storage.base.missions import MissionRecords
from rallypoint.storage.base.packages import PackageRecords
from rallypoint.storage.base.tokens import TokenRecords
from rallypoint.storage.base.users import UserRecords
from rallypoint.storage.factory import Stores, open_stores
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


@pytest.fixture(params=_backends("users"))
async def user_records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UserRecords]:
    backend = (await stores_for(request, tmp_path)).users()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture(params=_backends("tokens"))
async def token_records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TokenRecords]:
    backend = (await stores_for(request, tmp_path)).tokens()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture(params=_backends("audit"))
async def audit_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    """A factory (not one store): the audit suite opens several writers on one log."""
    return await stores_for(request, tmp_path)


@pytest.fixture(params=_backends("mailbox"))
async def mailbox_records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MailboxRecords]:
    backend = (await stores_for(request, tmp_path)).mailbox()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture(params=_backends("packages"))
async def package_records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PackageRecords]:
    backend = (await stores_for(request, tmp_path)).packages()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture(params=_backends("federation"))
async def federation_records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FederationRecords]:
    backend = (await stores_for(request, tmp_path)).federation()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture(params=_backends("missions"))
async def mission_records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MissionRecords]:
    backend = (await stores_for(request, tmp_path)).missions()
    try:
        yield backend
    finally:
        await backend.close()
