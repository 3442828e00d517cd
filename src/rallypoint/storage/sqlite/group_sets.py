"""Sets of access groups, stored once and referenced by id from each event row (see ``schema``)."""

from __future__ import annotations

import json
import sqlite3

EMPTY_SET = 0
_EMPTY: frozenset[str] = frozenset()


def group_set_key(groups: frozenset[str]) -> str:
    """The unique text naming a set of groups in ``group_sets.names`` (exact, order-free)."""
    return json.dumps(sorted(groups), ensure_ascii=False, separators=(",", ":"))


def add_group_set(db: sqlite3.Connection, groups: frozenset[str]) -> int:
    """The id of ``groups`` in ``group_sets``, inserting the set (and its members) if new."""
    if not groups:
        return EMPTY_SET
    key = group_set_key(groups)
    row = db.execute("SELECT id FROM group_sets WHERE names = ?", (key,)).fetchone()
    if row is not None:
        return int(row[0])
    set_id = db.execute("INSERT INTO group_sets (names) VALUES (?)", (key,)).lastrowid
    assert set_id is not None
    db.executemany("INSERT INTO group_set_members (grp, set_id) VALUES (?, ?)", [(g, set_id) for g in groups])
    return set_id


class GroupSetCache:
    """Both directions of ``group_sets`` in memory: a deployment has a handful of distinct sets.

    Used from a store's worker thread only. Ids never change once written, so entries never go
    stale; an id another process wrote is loaded on first sight.
    """

    def __init__(self) -> None:
        self._ids: dict[frozenset[str], int] = {_EMPTY: EMPTY_SET}
        self._sets: dict[int, frozenset[str]] = {EMPTY_SET: _EMPTY}

    def ids_for(self, db: sqlite3.Connection, wanted: set[frozenset[str]]) -> dict[frozenset[str], int]:
        """Ids of every set in ``wanted``, inserting new ones; call inside the append transaction.

        New ids are returned but only remembered by :meth:`remember` once the transaction commits,
        so a rolled-back batch leaves no id in the cache that is not on disk.
        """
        out: dict[frozenset[str], int] = {}
        for groups in wanted:
            known = self._ids.get(groups)
            out[groups] = known if known is not None else add_group_set(db, groups)
        return out

    def remember(self, ids: dict[frozenset[str], int]) -> None:
        """Keep committed ids."""
        for groups, set_id in ids.items():
            self._ids[groups] = set_id
            self._sets[set_id] = groups

    def groups_of(self, db: sqlite3.Connection, set_id: int) -> frozenset[str]:
        """The set an id names (loading the table when another process added it)."""
        found = self._sets.get(set_id)
        if found is None:
            for row_id, names in db.execute("SELECT id, names FROM group_sets"):
                groups = frozenset(json.loads(names))
                self._sets[row_id] = groups
                self._ids[groups] = row_id
            found = self._sets[set_id]
        return found
