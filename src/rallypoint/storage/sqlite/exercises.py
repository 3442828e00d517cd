"""SQLite rows behind the exercise control API (``DATA_DIR/exercises.db``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from rallypoint.model.exercise_control import Command, Exercise
from rallypoint.storage.sqlite.worker import SqliteWorker, transaction

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE exercises (
        id         TEXT    NOT NULL PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        version    INTEGER NOT NULL,
        last_seq   INTEGER NOT NULL DEFAULT 0,
        doc        BLOB    NOT NULL
    );
    CREATE TABLE exercise_commands (
        exercise TEXT    NOT NULL REFERENCES exercises(id),
        seq      INTEGER NOT NULL,
        doc      BLOB    NOT NULL,
        PRIMARY KEY (exercise, seq)
    ) WITHOUT ROWID;
    """,
)
_EXERCISE = msgspec.json.Decoder(Exercise)
_COMMAND = msgspec.json.Decoder(Command)


class SqliteExerciseRecords:
    """Exercises and their commands in a SQLite file; one worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="exercise")

    async def insert(self, exercise: Exercise) -> bool:
        """Store a new exercise; False when the id exists."""
        return await self._worker.run(_insert, exercise)

    async def get(self, exercise_id: str) -> Exercise | None:
        """The exercise with this id, or None."""
        return await self._worker.run(_get, exercise_id)

    async def replace(self, exercise: Exercise, *, expected_version: int) -> bool:
        """Compare-and-set on ``version``."""
        return await self._worker.run(_replace, exercise, expected_version)

    async def all(self) -> list[Exercise]:
        """Every exercise, newest first."""
        return await self._worker.run(_all)

    async def add_command(self, exercise_id: str, command: Command) -> int | None:
        """Append with the next sequence number."""
        return await self._worker.run(_add_command, exercise_id, command)

    async def commands(self, exercise_id: str, *, after: int, limit: int = 500) -> list[Command]:
        """Commands after ``after``, in order."""
        return await self._worker.run(_commands, exercise_id, after, limit)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _with_seq(exercise: Exercise, last_seq: int) -> Exercise:
    return msgspec.structs.replace(exercise, last_seq=last_seq)


def _insert(db: sqlite3.Connection, exercise: Exercise) -> bool:
    cur = db.execute(
        "INSERT INTO exercises (id, created_ms, version, last_seq, doc) VALUES (?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
        (exercise.id, exercise.created_at, exercise.version, msgspec.json.encode(_with_seq(exercise, 0))),
    )
    return cur.rowcount > 0


def _get(db: sqlite3.Connection, exercise_id: str) -> Exercise | None:
    row = db.execute("SELECT doc, last_seq FROM exercises WHERE id = ?", (exercise_id,)).fetchone()
    return None if row is None else _with_seq(_EXERCISE.decode(row[0]), row[1])


def _replace(db: sqlite3.Connection, exercise: Exercise, expected: int) -> bool:
    cur = db.execute(
        "UPDATE exercises SET version = ?, doc = ? WHERE id = ? AND version = ?",
        (exercise.version, msgspec.json.encode(exercise), exercise.id, expected),
    )
    return cur.rowcount > 0


def _all(db: sqlite3.Connection) -> list[Exercise]:
    rows = db.execute("SELECT doc, last_seq FROM exercises ORDER BY created_ms DESC, id").fetchall()
    return [_with_seq(_EXERCISE.decode(doc), seq) for doc, seq in rows]


def _add_command(db: sqlite3.Connection, exercise_id: str, command: Command) -> int | None:
    def add() -> int | None:
        # The number taken and the row written in one transaction (another process may add too).
        row = db.execute("UPDATE exercises SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq",
                         (exercise_id,)).fetchone()
        if row is None:
            return None
        seq = int(row[0])
        db.execute("INSERT INTO exercise_commands (exercise, seq, doc) VALUES (?, ?, ?)",
                   (exercise_id, seq, msgspec.json.encode(msgspec.structs.replace(command, seq=seq))))
        return seq

    return transaction(db, add)


def _commands(db: sqlite3.Connection, exercise_id: str, after: int, limit: int) -> list[Command]:
    rows = db.execute("SELECT doc FROM exercise_commands WHERE exercise = ? AND seq > ? ORDER BY seq LIMIT ?",
                      (exercise_id, after, limit)).fetchall()
    return [_COMMAND.decode(r[0]) for r in rows]
