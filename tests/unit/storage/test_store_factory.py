"""open_event_store: URL to backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.errors import ConfigError
from rallypoint.storage.factory import open_event_store, sqlite_path_from_url
from rallypoint.storage.memory import MemoryEventStore
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


def test_postgresql_is_refused_clearly_without_echoing_credentials() -> None:
    with pytest.raises(ConfigError, match="not yet supported") as info:
        open_event_store("postgresql://user:secret@db/rallypoint", Path("/data"))
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("url", ["mysql://x", "events.db", "sqlite:relative.db", "sqlite:///x.db?mode=ro"])
def test_unknown_or_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        open_event_store(url, Path("/data"))
