"""open_event_store and open_stores: URL to backends."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rallypoint.errors import ConfigError, StorageError
from rallypoint.storage.factory import POSTGRES_STORES, open_event_store, open_stores, sqlite_path_from_url
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


def test_sqlite_urls_keep_every_other_store_in_the_data_directory(tmp_path: Path) -> None:
    from rallypoint.storage.files import FileBlobStore
    from rallypoint.storage.sqlite.federation import SqliteFederationStore
    from rallypoint.storage.sqlite.users import SqliteUserRecords

    stores = open_stores("memory://", tmp_path)
    users = stores.users()
    assert isinstance(users, SqliteUserRecords) and users.path == tmp_path / "users.db"
    assert isinstance(stores.federation(), SqliteFederationStore)
    blobs = stores.blobs()
    assert isinstance(blobs, FileBlobStore) and blobs.root == tmp_path / "blobs"
    assert not any(stores.on_postgres(name) for name in POSTGRES_STORES)


async def test_a_postgresql_url_puts_every_store_but_blobs_in_the_database(tmp_path: Path) -> None:
    from rallypoint.storage.files import FileBlobStore
    from rallypoint.storage.postgres.audit import PostgresAuditRecords
    from rallypoint.storage.postgres.federation import PostgresFederationRecords
    from rallypoint.storage.postgres.mailbox import PostgresMailboxRecords
    from rallypoint.storage.postgres.missions import PostgresMissionRecords
    from rallypoint.storage.postgres.packages import PostgresPackageRecords
    from rallypoint.storage.postgres.tokens import PostgresTokenRecords
    from rallypoint.storage.postgres.users import PostgresUserRecords

    stores = open_stores("postgres://db/rallypoint", tmp_path, node_id="node-7")
    opened = [stores.events(), stores.users(), stores.tokens(), stores.audit(), stores.missions(), stores.packages(),
              stores.mailbox(), stores.federation()]
    kinds = (PostgresEventStore, PostgresUserRecords, PostgresTokenRecords, PostgresAuditRecords,
             PostgresMissionRecords, PostgresPackageRecords, PostgresMailboxRecords, PostgresFederationRecords)
    assert [type(s) for s in opened] == list(kinds)
    assert isinstance(stores.blobs(), FileBlobStore)
    for store in opened:
        await store.close()  # nothing was opened: no connection is attempted


def test_the_command_line_uses_the_servers_storage_url(tmp_path: Path) -> None:
    from rallypoint.cli.stores import cli_stores

    assert cli_stores(tmp_path, {}).url == "sqlite://"
    assert cli_stores(tmp_path, {"RALLYPOINT_STORAGE": "postgresql://db/x"}).on_postgres("users")
