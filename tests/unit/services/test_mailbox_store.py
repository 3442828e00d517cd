"""The mailbox file: batches, cursors, purge and the sequence high-water mark."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from rallypoint.storage.sqlite.mailbox import (
    MailboxBatch,
    MailRecord,
    RecipientRecord,
    SqliteMailboxStore,
    load_state,
)

NOW = 1_700_000_000_000


def _mail(seq: int, *, expires: int = NOW + 60_000) -> MailRecord:
    return MailRecord(seq=seq, xml=f"<event uid='{seq}'/>".encode(), groups=frozenset({"Red", "A,B"}),
                      priority=1, created_ms=NOW, expires_ms=expires)


def _count(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as db:
        (n,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(n)


async def test_batches_round_trip_and_cursor_hides_delivered(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.db"
    load_state(path, NOW)  # creates the schema
    store = SqliteMailboxStore(path)
    who = RecipientRecord(identity="uid:B", uid="B", callsign="BRAVO", principal=None,
                          read_groups=frozenset({"Red"}), last_seen_ms=NOW)
    await store.apply(MailboxBatch(mails=((_mail(1), ("uid:B", "uid:C")), (_mail(2), ("uid:B",))),
                                   recipients=(who,)))
    await store.apply(MailboxBatch(cursors=(("uid:B", 1),)))
    await store.close()
    state = load_state(path, NOW)
    assert [m.seq for m in state.pending["uid:B"]] == [2]
    assert [m.seq for m in state.pending["uid:C"]] == [1]
    assert state.pending["uid:C"][0].groups == frozenset({"Red", "A,B"})
    assert state.recipients == [who]
    assert state.next_seq == 3


async def test_purge_removes_delivered_and_expired_but_keeps_the_sequence(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.db"
    load_state(path, NOW)
    store = SqliteMailboxStore(path)
    await store.apply(MailboxBatch(mails=((_mail(1), ("uid:B",)), (_mail(2, expires=NOW - 1), ("uid:B",)),
                                          (_mail(3), ("uid:C",)))))
    await store.apply(MailboxBatch(cursors=(("uid:B", 1),)))
    assert await store.purge(NOW) == 2
    await store.close()
    assert _count(path, "messages") == 1
    state = load_state(path, NOW)
    assert list(state.pending) == ["uid:C"]
    # Sequence numbers never go back, even with the highest message purged.
    assert state.next_seq == 4


async def test_expired_rows_are_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.db"
    load_state(path, NOW)
    store = SqliteMailboxStore(path)
    await store.apply(MailboxBatch(mails=((_mail(1, expires=NOW + 10), ("uid:B",)),)))
    await store.close()
    assert load_state(path, NOW + 10).pending == {}
    assert [m.seq for m in load_state(path, NOW + 9).pending["uid:B"]] == [1]
