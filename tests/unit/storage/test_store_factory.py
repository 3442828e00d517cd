"""open_event_store: URL to backend."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rallypoint.errors import ConfigError, StorageError
from rallypoint.storage.factory import open_event_store, sqlite_path_from_url
from rallypoint.storage.memory import MemoryEventStore
from rallypoint.storage.postgres.events import PostgresEventStore
from rallypoint.storage.postgres.pool import RetryPolicy
from rallypoint.storage.sqlite.events import SqliteEventStore


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///abs/dir/history.db", Path("/abs/dir/history.db")),
        ("sqlite://", Path("/data/events.db")),
        ("sqlite://sub/h.db", Path("/data/sub/h.db")),
    ],
)
async def test_sqlite_urls(url: str, expected: Path) -> None:
    assert sqlite_path_from_url(url, Path("/data")) == expected
    store = open_event_store(url, Path("/data"))
    assert isinstance(store, SqliteEventStore)
    assert store.path == expected
    await store.close()


def test_memory_url() -> None:
    assert isinstance(open_event_store("memory://", Path("/data")), MemoryEventStore)


@pytest.mark.parametrize("url", ["postgresql://user:secret@db/rallypoint", "postgres://db/rallypoint"])
async def test_postgresql_urls_open_the_postgres_store_lazily(url: str) -> None:
    store = open_event_store(url, Path("/data"))
    assert isinstance(store, PostgresEventStore)
    await store.close()  # nothing was opened: no connection is attempted


async def test_an_unreachable_postgresql_server_is_a_storage_error_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        store = PostgresEventStore(f"postgresql://user:secret@127.0.0.1:{port}/x", retry=RetryPolicy(attempts=2))
        with pytest.raises(StorageError) as info:
            await store.latest(now_ms=0)
    await store.close()
    assert "secret" not in str(info.value) and store.retries == 1


@pytest.mark.parametrize("url", ["mysql://x", "events.db", "sqlite:relative.db", "sqlite:///x.db?mode=ro"])
def test_unknown_or_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        open_event_store(url, Path("/data"))
