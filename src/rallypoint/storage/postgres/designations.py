"""PostgreSQL designation store, shared by every node (``--storage postgresql://...``).

Its own migration family (``designations``). Each row keeps the whole designation as JSON next to
the columns queries filter on. A transition is one conditional ``UPDATE`` run once (never retried:
a retry after a commit whose answer was lost would report a lost race as a conflict).
"""

from __future__ import annotations

import builtins

import msgspec

from rallypoint.model.designation import Designation, State
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy, rows_affected

# pg_advisory_lock key for the designation store's migrations ("RP_DESIG", stable forever).
LOCK_KEY = 0x52505F4445534947
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "designations",
        """
        CREATE TABLE designations (
            id          text PRIMARY KEY,
            state       text NOT NULL,
            mission     text,
            proposed_ms bigint NOT NULL,
            body        bytea NOT NULL
        );
        CREATE INDEX designations_order ON designations (proposed_ms, id);
        CREATE INDEX designations_mission ON designations (mission);
        """,
    ),
)

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Designation)


class PostgresDesignationRecords:
    """``DesignationRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 4) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="designations",
                                  max_size=max_connections, retry=retry)

    async def insert(self, designation: Designation) -> None:
        """Store a new designation (an insert retried after it committed changes nothing)."""
        d = designation
        body = _ENCODER.encode(d)
        await self._pool.retrying(
            lambda conn: conn.execute(
                "INSERT INTO designations (id, state, mission, proposed_ms, body) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (id) DO NOTHING",
                d.id, d.state.value, d.mission, d.proposed_ms, body,
            ),
            name="insert",
        )

    async def get(self, designation_id: str) -> Designation | None:
        """The designation with this id, or None."""
        row = await self._pool.retrying(
            lambda conn: conn.fetchrow("SELECT body FROM designations WHERE id = $1", designation_id), name="get"
        )
        return None if row is None else _DECODER.decode(row[0])

    async def list(self, *, state: State | None = None, mission: str | None = None) -> list[Designation]:
        """Designations, oldest proposal first, optionally of one state and one mission."""
        return [_DECODER.decode(body) for body in await self.list_json(state=state, mission=mission)]

    async def list_json(self, *, state: State | None = None, mission: str | None = None) -> builtins.list[bytes]:
        """As :meth:`list`, each designation as its stored JSON."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                "SELECT body FROM designations WHERE ($1::text IS NULL OR state = $1)"
                " AND ($2::text IS NULL OR mission = $2) ORDER BY proposed_ms, id",
                None if state is None else state.value, mission,
            ),
            name="list",
        )
        return [bytes(row[0]) for row in rows]

    async def transition(self, updated: Designation, *, expected: State) -> bool:
        """Replace the row if its state is still ``expected``; False otherwise."""
        d = updated
        body = _ENCODER.encode(d)
        status = await self._pool.once(
            lambda conn: conn.execute(
                "UPDATE designations SET state = $2, mission = $3, body = $4 WHERE id = $1 AND state = $5",
                d.id, d.state.value, d.mission, body, expected.value,
            ),
            name="transition",
        )
        return rows_affected(status) > 0

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()
