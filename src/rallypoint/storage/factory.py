"""Pick an event store backend from a ``--storage`` URL.

* ``sqlite:///abs/path.db``: SQLite file at an absolute path.
* ``sqlite://relative/path.db``: relative to the data directory; bare ``sqlite://`` means
  ``<data-dir>/events.db``.
* ``memory://``: in-process, lost on exit.
* ``postgresql://user@host:port/database`` (or ``postgres://``): a PostgreSQL database shared by
  several nodes (asyncpg; the schema is created and migrated at start). Only the event history lives
  there for now; the other stores stay SQLite files in the data directory.
"""

from __future__ import annotations

from pathlib import Path

from rallypoint.errors import ConfigError
from rallypoint.storage.base import EventStore

DEFAULT_EVENTS_FILE = "events.db"


def sqlite_path_from_url(url: str, data_dir: Path) -> Path | None:
    """The database path a ``sqlite://`` URL names, or None if ``url`` is not a SQLite URL."""
    if not url.startswith("sqlite://"):
        return None
    rest = url.removeprefix("sqlite://")
    if "?" in rest or "#" in rest:
        raise ConfigError(f"storage URL {url!r}: query strings and fragments are not supported")
    if not rest:
        return data_dir / DEFAULT_EVENTS_FILE
    path = Path(rest)
    return path if path.is_absolute() else data_dir / path


def open_event_store(url: str, data_dir: Path) -> EventStore:
    """Build (without touching the disk yet) the event store ``url`` names."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        path = sqlite_path_from_url(url, data_dir)
        if path is None:
            raise ConfigError(
                f"storage URL {url!r}: expected sqlite:///absolute/path or sqlite://relative/path"
            )
        # Imported here so memory-only deployments never load sqlite3.
        from rallypoint.storage.sqlite.events import SqliteEventStore

        return SqliteEventStore(path)
    if scheme == "memory":
        from rallypoint.storage.memory import MemoryEventStore

        return MemoryEventStore()
    if scheme in ("postgresql", "postgres"):
        # Imported here so SQLite deployments never load asyncpg.
        from rallypoint.storage.postgres.events import PostgresEventStore

        return PostgresEventStore(url)
    # Only the scheme is echoed: URLs may carry credentials.
    raise ConfigError(
        f"storage URL scheme {scheme or url!r} is not supported;"
        " use sqlite:///path/events.db, postgresql://user@host/database or memory://"
    )
