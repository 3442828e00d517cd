"""PostgreSQL exercises shared by every node (``--storage postgresql://...``), migration family ``exercises``.

Reads and inserts are retried after a lost connection; a compare-and-set and a command append run
once (a retry after an unseen commit would report a conflict, or add the command twice).
"""

from __future__ import annotations

import asyncpg
import msgspec

from rallypoint.model.exercise_control import Command, Exercise
from rallypoint.storage.postgres.migrations import Migration
from rallypoint.storage.postgres.pool import PostgresPool, RetryPolicy, rows_affected

# pg_advisory_lock key for the exercise store's migrations ("RP_EXERC", stable forever).
LOCK_KEY = 0x52505F4558455243
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "exercises",
        """
        CREATE TABLE exercises (
            id          text PRIMARY KEY,
            created_ms  bigint NOT NULL,
            version     integer NOT NULL,
            last_seq    bigint NOT NULL DEFAULT 0,
            doc         bytea NOT NULL
        );
        CREATE TABLE exercise_commands (
            exercise text NOT NULL REFERENCES exercises(id),
            seq      bigint NOT NULL,
            doc      bytea NOT NULL,
            PRIMARY KEY (exercise, seq)
        );
        """,
    ),
)
_EXERCISE = msgspec.json.Decoder(Exercise)
_COMMAND = msgspec.json.Decoder(Command)


def _with_seq(exercise: Exercise, last_seq: int) -> Exercise:
    return msgspec.structs.replace(exercise, last_seq=last_seq)


class PostgresExerciseRecords:
    """``ExerciseRecords`` in a PostgreSQL database."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None, max_connections: int = 2) -> None:
        self._pool = PostgresPool(dsn, migrations=MIGRATIONS, lock_key=LOCK_KEY, what="exercises",
                                  max_size=max_connections, retry=retry)

    async def insert(self, exercise: Exercise) -> bool:
        """Store a new exercise; False when its id exists."""
        doc = msgspec.json.encode(_with_seq(exercise, 0))
        status = await self._pool.retrying(
            lambda conn: conn.execute(
                "INSERT INTO exercises (id, created_ms, version, last_seq, doc) VALUES ($1, $2, $3, 0, $4)"
                " ON CONFLICT (id) DO NOTHING",
                exercise.id, exercise.created_at, exercise.version, doc,
            ),
            name="insert",
        )
        return rows_affected(status) > 0

    async def get(self, exercise_id: str) -> Exercise | None:
        """The exercise with this id, or None."""
        row = await self._pool.retrying(
            lambda conn: conn.fetchrow("SELECT doc, last_seq FROM exercises WHERE id = $1", exercise_id), name="get"
        )
        return None if row is None else _with_seq(_EXERCISE.decode(row[0]), int(row[1]))

    async def replace(self, exercise: Exercise, *, expected_version: int) -> bool:
        """Compare-and-set on the stored version."""
        doc = msgspec.json.encode(exercise)
        status = await self._pool.once(
            lambda conn: conn.execute(
                "UPDATE exercises SET version = $2, doc = $3 WHERE id = $1 AND version = $4",
                exercise.id, exercise.version, doc, expected_version,
            ),
            name="replace",
        )
        return rows_affected(status) > 0

    async def all(self) -> list[Exercise]:
        """Every exercise, newest first."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch("SELECT doc, last_seq FROM exercises ORDER BY created_ms DESC, id"), name="all"
        )
        return [_with_seq(_EXERCISE.decode(r[0]), int(r[1])) for r in rows]

    async def add_command(self, exercise_id: str, command: Command) -> int | None:
        """Append with the next sequence number (the row lock of the exercise orders concurrent appends)."""

        async def op(conn: asyncpg.Connection) -> int | None:
            async with conn.transaction():
                seq = await conn.fetchval(
                    "UPDATE exercises SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq", exercise_id
                )
                if seq is None:
                    return None
                await conn.execute(
                    "INSERT INTO exercise_commands (exercise, seq, doc) VALUES ($1, $2, $3)",
                    exercise_id, seq, msgspec.json.encode(msgspec.structs.replace(command, seq=int(seq))),
                )
                return int(seq)

        return await self._pool.once(op, name="add_command")

    async def commands(self, exercise_id: str, *, after: int, limit: int = 500) -> list[Command]:
        """Commands after ``after``, in order."""
        rows = await self._pool.retrying(
            lambda conn: conn.fetch(
                "SELECT doc FROM exercise_commands WHERE exercise = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                exercise_id, after, limit,
            ),
            name="commands",
        )
        return [_COMMAND.decode(r[0]) for r in rows]

    async def close(self) -> None:
        """Close the pool; closing twice is harmless."""
        await self._pool.close()
