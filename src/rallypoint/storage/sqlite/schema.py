"""Schema of the SQLite event store, versioned with ``PRAGMA user_version``.

Index choice for bounding boxes: a plain composite index on ``(lat, lon)`` rather than an R*Tree
virtual table. The table is written far more often than it is searched by area, an R*Tree would
add a second structure to maintain on every insert (and is an optional SQLite build feature), and
history searches are almost always bounded in time too, where ``events_time`` does the work. The
composite index narrows by latitude range and filters longitude from the index without touching
rows, which is enough for operator queries.
"""

from __future__ import annotations

import sqlite3
import time

SCHEMA_VERSION = 1

# Each entry migrates from version (index) to version (index + 1).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        id       INTEGER PRIMARY KEY,
        uid      TEXT    NOT NULL,
        type     TEXT    NOT NULL,
        how      TEXT    NOT NULL,
        time     INTEGER NOT NULL,
        start    INTEGER NOT NULL,
        stale    INTEGER NOT NULL,
        lat      REAL    NOT NULL,
        lon      REAL    NOT NULL,
        hae      REAL    NOT NULL,
        callsign TEXT,
        grp      TEXT,
        sender   TEXT,
        xml      BLOB    NOT NULL,
        received INTEGER NOT NULL,
        deleted  INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX events_time ON events(time);
    -- (uid, time) serves uid queries and the "is there a newer row for this uid" probe.
    CREATE INDEX events_uid_time ON events(uid, time);
    CREATE INDEX events_type ON events(type);
    CREATE INDEX events_lat_lon ON events(lat, lon);
    -- latest() starts from the rows that are still live, usually a small fraction.
    CREATE INDEX events_stale ON events(stale);
    """,
)


def configure(db: sqlite3.Connection) -> None:
    """Connection settings: WAL so readers never block the writer; NORMAL sync is safe in WAL.

    Runs in a store's worker thread, never on the event loop.
    """
    db.execute("PRAGMA busy_timeout=30000")
    # Switching a new file to WAL can fail with "database is locked" without waiting for the busy
    # timeout when another process (the server and the CLI) opens the same file at that moment.
    for attempt in range(100):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
