"""Embedded SQLite backends (the default storage)."""

from rallypoint.storage.sqlite.events import SqliteEventStore

__all__ = ["SqliteEventStore"]
