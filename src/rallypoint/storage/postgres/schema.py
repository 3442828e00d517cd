"""Schema of the PostgreSQL event store (see ``migrations`` for how it is applied).

* ``groups text[]`` with a GIN index: the reader filter is ``groups && $readers`` (exact names).
* ``type`` and ``uid`` use the "C" collation so prefix ranges follow code points, as in SQLite.
* Area: a GiST index on ``point(lon, lat)``, searched with ``<@ box``; the exact ``BETWEEN`` test
  beside it keeps the edges exactly inclusive (geometric operators compare with a small epsilon).
  Migration 2 requires PostGIS (``storage.postgres.spatial``): it adds ``geom geometry(Point, 4326)``,
  generated from ``lon``/``lat``, with a GiST index in place of the ``point`` one. A database without
  PostGIS stays at the box index; migration 2 then waits, and converts it (rewriting the table) at
  the first start that finds the extension.
* ``latest()`` starts from live picture rows (partial index on ``stale``) and probes for a newer
  picture row of the same uid (partial index on ``uid, time, id``).
* ``event_batches`` makes an append idempotent: a retried batch whose first attempt committed is
  recognised by its id and not written twice.
"""

from __future__ import annotations

from rallypoint.storage.postgres.migrations import Migration

# pg_advisory_lock key for the event store's migrations ("rallypoint events", stable forever).
LOCK_KEY = 0x52505F4556454E54

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events",
        """
        CREATE TABLE events (
            id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            uid      text COLLATE "C" NOT NULL,
            type     text COLLATE "C" NOT NULL,
            how      text NOT NULL,
            time     bigint NOT NULL,
            start    bigint NOT NULL,
            stale    bigint NOT NULL,
            lat      double precision NOT NULL,
            lon      double precision NOT NULL,
            hae      double precision NOT NULL,
            callsign text,
            groups   text[] NOT NULL,
            team     text,
            sender   text,
            xml      bytea NOT NULL,
            received bigint NOT NULL,
            picture  boolean NOT NULL,
            deleted  boolean NOT NULL DEFAULT false
        );
        CREATE INDEX events_time ON events (time, id);
        CREATE INDEX events_uid_time ON events (uid, time, id);
        CREATE INDEX events_type ON events (type);
        CREATE INDEX events_groups ON events USING gin (groups);
        CREATE INDEX events_position ON events USING gist (point(lon, lat));
        CREATE INDEX events_picture_uid ON events (uid, time, id) WHERE picture;
        CREATE INDEX events_picture_stale ON events (stale) WHERE picture;
        CREATE TABLE event_batches (
            batch      uuid PRIMARY KEY,
            written_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    Migration(
        2,
        "postgis area index",
        """
        ALTER TABLE events ADD COLUMN geom geometry(Point, 4326) GENERATED ALWAYS AS (
            CASE WHEN lat = 0 AND lon = 0 THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END
        ) STORED;
        CREATE INDEX events_geom ON events USING gist (geom);
        DROP INDEX events_position;
        """,
        requires="postgis",
    ),
    Migration(
        3,
        "exercise column",
        # The exercise a row is simulated traffic of (NULL: live traffic).
        """
        ALTER TABLE events ADD COLUMN exercise text;
        CREATE INDEX events_exercise_time ON events (exercise, time, id) WHERE exercise IS NOT NULL;
        """,
    ),
)
