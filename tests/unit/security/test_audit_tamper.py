"""Tampering with the audit database behind Rallypoint's back is reported by verify()."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rallypoint.security.audit import AuditLog, AuditVerification, entry_hash
from rallypoint.storage.sqlite.audit import SqliteAuditRecords

T0 = 1_700_000_000_000


async def _populate(path: Path, n: int = 5) -> None:
    log = AuditLog(SqliteAuditRecords(path))
    try:
        for i in range(n):
            await log.append("cli:op", "user.add", f"user{i}", {"role": "member", "i": str(i)}, now_ms=T0 + i)
        assert (await log.verify()).ok
    finally:
        await log.close()


def _tamper(path: Path, *statements: str) -> None:
    # The attacker drops the append-only triggers first.
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("DROP TRIGGER audit_no_delete")
        for sql in statements:
            db.execute(sql)


async def _verify(path: Path) -> AuditVerification:
    log = AuditLog(SqliteAuditRecords(path))
    try:
        return await log.verify()
    finally:
        await log.close()


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    await _populate(path)
    return path


async def test_edited_detail_is_a_hash_mismatch(db: Path) -> None:
    _tamper(db, """UPDATE audit SET detail = '{"i":"2","role":"admin"}' WHERE seq = 3""")
    result = await _verify(db)
    assert not result.ok
    assert result.checked == 5
    assert result.problems == ["seq 3: hash mismatch (entry altered)"]


async def test_edit_with_recomputed_hash_breaks_the_next_link(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        (prev,) = conn.execute("SELECT prev_hash FROM audit WHERE seq = 3").fetchone()
    forged = entry_hash(3, T0 + 2, "cli:op", "user.add", "user2", {"i": "2", "role": "admin"}, prev)
    _tamper(db, f"""UPDATE audit SET detail = '{{"i":"2","role":"admin"}}', hash = '{forged}' WHERE seq = 3""")
    result = await _verify(db)
    assert not result.ok
    assert any(p.startswith("seq 4: prev_hash") for p in result.problems)


async def test_edited_timestamp_or_actor_is_caught(db: Path) -> None:
    _tamper(db, "UPDATE audit SET actor = 'someone-else' WHERE seq = 1", "UPDATE audit SET ts_ms = 0 WHERE seq = 5")
    result = await _verify(db)
    assert result.problems == ["seq 1: hash mismatch (entry altered)", "seq 5: hash mismatch (entry altered)"]


async def test_removed_middle_entry_is_a_gap(db: Path) -> None:
    _tamper(db, "DELETE FROM audit WHERE seq = 2")
    result = await _verify(db)
    assert not result.ok
    assert result.checked == 4
    assert "seq 2 missing (entries removed)" in result.problems
    assert any(p.startswith("seq 3: prev_hash") for p in result.problems)


async def test_removed_first_entry_is_caught(db: Path) -> None:
    _tamper(db, "DELETE FROM audit WHERE seq = 1")
    result = await _verify(db)
    assert "seq 1 missing (entries removed)" in result.problems


async def test_swapped_entries_are_caught(db: Path) -> None:
    _tamper(
        db,
        "UPDATE audit SET seq = -1 WHERE seq = 2",
        "UPDATE audit SET seq = 2 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = -1",
    )
    result = await _verify(db)
    assert not result.ok
    assert "seq 2: hash mismatch (entry altered)" in result.problems
    assert "seq 3: hash mismatch (entry altered)" in result.problems
    assert any(p.startswith("seq 2: prev_hash") for p in result.problems)


async def test_truncated_tail_is_caught_by_the_anchor(db: Path) -> None:
    _tamper(db, "DELETE FROM audit WHERE seq = 5")
    result = await _verify(db)
    assert not result.ok
    assert result.checked == 4
    assert result.problems == [
        "log ends at seq 4 but the anchor records seq 5 (entries removed from the end)"
    ]


async def test_emptied_table_is_caught_by_the_anchor(db: Path) -> None:
    _tamper(db, "DELETE FROM audit")
    result = await _verify(db)
    assert not result.ok and result.checked == 0


async def test_replaced_tail_is_caught_by_the_anchor(db: Path) -> None:
    # Delete the last entry and append a different, correctly chained one in its place.
    with sqlite3.connect(db) as conn:
        (prev,) = conn.execute("SELECT hash FROM audit WHERE seq = 4").fetchone()
    forged = entry_hash(5, T0, "x", "user.add", "y", {}, prev)
    _tamper(
        db,
        "DELETE FROM audit WHERE seq = 5",
        f"INSERT INTO audit VALUES (5, {T0}, 'x', 'user.add', 'y', '{{}}', '{prev}', '{forged}')",
    )
    result = await _verify(db)
    assert result.problems == ["seq 5: hash differs from the anchor (entry replaced)"]


async def test_without_the_anchor_a_clean_truncation_goes_unnoticed(db: Path) -> None:
    # Documents the limit of an unkeyed chain: the anchor is what catches a cut tail.
    _tamper(db, "DELETE FROM audit WHERE seq = 5")
    db.with_suffix(".anchor").unlink()
    result = await _verify(db)
    assert result.ok and result.checked == 4


async def test_corrupt_anchor_is_reported(db: Path) -> None:
    db.with_suffix(".anchor").write_text("{not json")
    result = await _verify(db)
    assert not result.ok
    assert result.problems[0].startswith("anchor unreadable")
