"""SQLite rows behind designations (``DATA_DIR/designations.db``); ``services.designations`` holds the rules.

Each row keeps the whole designation as JSON next to the columns queries filter on; a transition
is one conditional ``UPDATE`` (``... AND state = ?``), so it either happens whole or not at all.
"""

from __future__ import annotations

import builtins
import sqlite3
from pathlib import Path

import msgspec

from rallypoint.model.designation import Designation, State
from rallypoint.storage.sqlite.worker import SqliteWorker

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE designations (
        id          TEXT    NOT NULL PRIMARY KEY,
        state       TEXT    NOT NULL,
        mission     TEXT,
        proposed_ms INTEGER NOT NULL,
        body        BLOB    NOT NULL
    );
    CREATE INDEX designations_order ON designations (proposed_ms, id);
    CREATE INDEX designations_mission ON designations (mission);
    """,
)

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Designation)


class SqliteDesignationStore:
    """Designation rows in a SQLite file; one worker thread."""

    def __init__(self, path: Path) -> None:
        self._worker = SqliteWorker(path, migrations=_MIGRATIONS, what="designation")

    @property
    def path(self) -> Path:
        """The database file."""
        return self._worker.path

    async def insert(self, designation: Designation) -> None:
        """Store a new designation."""
        await self._worker.run(_insert, designation)

    async def get(self, designation_id: str) -> Designation | None:
        """The designation with this id, or None."""
        return await self._worker.run(_get, designation_id)

    async def list(self, *, state: State | None = None, mission: str | None = None) -> list[Designation]:
        """Designations, oldest proposal first, optionally of one state and one mission."""
        return await self._worker.run(_list, state, mission)

    async def list_json(self, *, state: State | None = None, mission: str | None = None) -> builtins.list[bytes]:
        """As :meth:`list`, each designation as its stored JSON."""
        return await self._worker.run(_list_json, state, mission)

    async def transition(self, updated: Designation, *, expected: State) -> bool:
        """Replace the row if its state is still ``expected``; False otherwise."""
        return await self._worker.run(_transition, updated, expected)

    async def close(self) -> None:
        """Close the database."""
        await self._worker.close()


def _insert(db: sqlite3.Connection, d: Designation) -> None:
    db.execute(
        "INSERT INTO designations (id, state, mission, proposed_ms, body) VALUES (?, ?, ?, ?, ?)",
        (d.id, d.state.value, d.mission, d.proposed_ms, _ENCODER.encode(d)),
    )


def _get(db: sqlite3.Connection, designation_id: str) -> Designation | None:
    row = db.execute("SELECT body FROM designations WHERE id = ?", (designation_id,)).fetchone()
    return None if row is None else _DECODER.decode(row[0])


def _list(db: sqlite3.Connection, state: State | None, mission: str | None) -> list[Designation]:
    return [_DECODER.decode(body) for body in _list_json(db, state, mission)]


def _list_json(db: sqlite3.Connection, state: State | None, mission: str | None) -> builtins.list[bytes]:
    where: list[str] = []
    args: list[str] = []
    if state is not None:
        where.append("state = ?")
        args.append(state.value)
    if mission is not None:
        where.append("mission = ?")
        args.append(mission)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(f"SELECT body FROM designations{clause} ORDER BY proposed_ms, id", args).fetchall()
    return [bytes(row[0]) for row in rows]


def _transition(db: sqlite3.Connection, d: Designation, expected: State) -> bool:
    cur = db.execute(
        "UPDATE designations SET state = ?, mission = ?, body = ? WHERE id = ? AND state = ?",
        (d.state.value, d.mission, _ENCODER.encode(d), d.id, expected.value),
    )
    return cur.rowcount > 0
