"""The missions change log: append entries, read them back by time range.

Entries are keyed by the mission's guid without a foreign key, so a ``DELETE_MISSION`` entry outlives
its mission.
"""

from __future__ import annotations

import sqlite3

from rallypoint.model.mission import ChangeType, MissionChange


def insert_change(db: sqlite3.Connection, guid: str, c: MissionChange) -> None:
    """Append one change-log entry (within the caller's transaction, if any)."""
    db.execute(
        "INSERT INTO mission_changes (guid, mission, type, creator_uid, timestamp, content_hash, content_uid, details)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (guid, c.mission, c.type.value, c.creator_uid, c.timestamp, c.content_hash, c.content_uid, c.details),
    )


def select_changes(db: sqlite3.Connection, guid: str, since_ms: int, until_ms: int | None,
                   limit: int) -> list[MissionChange]:
    """Change-log entries of ``guid`` in a time range, oldest first, at most ``limit``."""
    cur = db.execute(
        "SELECT type, mission, creator_uid, timestamp, content_hash, content_uid, details FROM mission_changes "
        "WHERE guid = ? AND timestamp >= ? AND timestamp <= ? ORDER BY id LIMIT ?",
        (guid, since_ms, until_ms if until_ms is not None else 2**62, limit),
    )
    return [
        MissionChange(type=ChangeType(t), mission=m, creator_uid=c, timestamp=ts, content_hash=h, content_uid=u,
                      details=d)
        for t, m, c, ts, h, u, d in cur
    ]
