"""Schema of the SQLite event store, versioned with ``PRAGMA user_version``.

Index choice for bounding boxes: a plain composite index on ``(lat, lon)`` rather than an R*Tree
virtual table. The table is written far more often than it is searched by area, an R*Tree would
add a second structure to maintain on every insert (and is an optional SQLite build feature), and
history searches are almost always bounded in time too, where ``events_time`` does the work. The
composite index narrows by latitude range and filters longitude from the index without touching
rows, which is enough for operator queries.

Access groups (version 2): a row references the *set* of groups it was broadcast to
(``events.gset`` -> ``group_sets.id``; set 0 is the empty set of addressed rows), and
``group_set_members`` lists each set's names. A deployment has a handful of distinct sets, so the
append path writes one integer per row (the id comes from an in-memory cache), and the reader filter
is an exact, indexed lookup of the sets naming one of the reader's groups, evaluated once per query,
followed by an integer ``IN`` test per row. Version 1 kept a comma-joined string matched with
``instr``; migrating turns each distinct string into its set and marks broadcast rows as picture rows
(the best reconstruction: which ones presence refused was never recorded).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from rallypoint.storage.sqlite.group_sets import EMPTY_SET, add_group_set

# A migration is a SQL script or a function of the connection (run inside its transaction).
Migration = str | Callable[[sqlite3.Connection], None]

SCHEMA_VERSION = 3


def _groups_as_sets(db: sqlite3.Connection) -> None:
    """Version 2: ``grp`` strings become group sets; ``team`` and ``picture`` columns appear."""
    # One statement at a time: executescript would commit in the middle of the migration.
    for statement in (
        "CREATE TABLE group_sets (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE)",
        "CREATE TABLE group_set_members (grp TEXT NOT NULL, set_id INTEGER NOT NULL REFERENCES group_sets(id),"
        " PRIMARY KEY (grp, set_id)) WITHOUT ROWID",
        f"INSERT INTO group_sets (id, names) VALUES ({EMPTY_SET}, '[]')",
        f"ALTER TABLE events ADD COLUMN gset INTEGER NOT NULL DEFAULT {EMPTY_SET}",
        "ALTER TABLE events ADD COLUMN team TEXT",
        "ALTER TABLE events ADD COLUMN picture INTEGER NOT NULL DEFAULT 0",
    ):
        db.execute(statement)
    for (grp,) in db.execute("SELECT DISTINCT grp FROM events WHERE grp IS NOT NULL").fetchall():
        groups = frozenset(g for g in grp.split(",") if g)
        if not groups:
            continue
        set_id = add_group_set(db, groups)
        db.execute("UPDATE events SET gset = ?, picture = 1 WHERE grp = ?", (set_id, grp))
    db.execute("ALTER TABLE events DROP COLUMN grp")


# Each entry migrates from version (index) to version (index + 1).
MIGRATIONS: tuple[Migration, ...] = (
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
    _groups_as_sets,
    # Version 3: the exercise a row is simulated traffic of (NULL: live); exercise filters and
    # reports read one exercise's rows in time order from the partial index.
    """
    ALTER TABLE events ADD COLUMN exercise TEXT;
    CREATE INDEX events_exercise_time ON events(exercise, time) WHERE exercise IS NOT NULL;
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
