"""AuditLog: appends chain by hash, survive reopening, and verify clean."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from rallypoint.errors import StorageError
from rallypoint.security.audit import GENESIS_HASH, AuditLog, entry_hash
from rallypoint.storage.sqlite.audit import SqliteAuditRecords

T0 = 1_700_000_000_000


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[AuditLog]:
    audit = AuditLog(SqliteAuditRecords(tmp_path / "audit.db"))
    yield audit
    await audit.close()


async def test_first_entry_chains_from_genesis(log: AuditLog) -> None:
    e = await log.append("cli:root", "user.add", "alice", {"role": "admin"}, now_ms=T0)
    assert (e.seq, e.prev_hash, e.ts_ms) == (1, GENESIS_HASH, T0)
    assert e.detail == {"role": "admin"}
    # The hash is sha256 over a fixed-order canonical encoding, independent of detail key order.
    canonical = msgspec.json.encode([1, T0, "cli:root", "user.add", "alice", {"role": "admin"}, GENESIS_HASH])
    assert e.hash == hashlib.sha256(b"rallypoint-audit-v1\n" + canonical).hexdigest()


async def test_entries_link_and_list_in_order(log: AuditLog) -> None:
    a = await log.append("server", "login.ok", "alice", now_ms=T0)
    b = await log.append("server", "login.failed", "bob", {"reason": "bad_password"}, now_ms=T0 + 1)
    c = await log.append("admin", "cert.revoke", "carol", {"serial": "ab"}, now_ms=T0 + 2)
    assert b.prev_hash == a.hash and c.prev_hash == b.hash
    assert await log.entries() == [a, b, c]
    assert await log.entries(since_seq=1) == [b, c]
    assert await log.entries(since_seq=0, limit=1) == [a]
    assert c.hash == entry_hash(3, T0 + 2, "admin", "cert.revoke", "carol", {"serial": "ab"}, b.hash)


async def test_detail_key_order_does_not_change_the_hash(tmp_path: Path) -> None:
    one, two = AuditLog(SqliteAuditRecords(tmp_path / "a.db")), AuditLog(SqliteAuditRecords(tmp_path / "b.db"))
    try:
        x = await one.append("a", "user.add", "t", {"x": "1", "y": "2"}, now_ms=T0)
        y = await two.append("a", "user.add", "t", {"y": "2", "x": "1"}, now_ms=T0)
    finally:
        await one.close()
        await two.close()
    assert x.hash == y.hash


async def test_concurrent_appends_form_one_chain(log: AuditLog) -> None:
    made = await asyncio.gather(*(log.append("server", "login.ok", f"u{i}", now_ms=T0 + i) for i in range(40)))
    assert sorted(e.seq for e in made) == list(range(1, 41))
    result = await log.verify()
    assert result.ok, result.problems
    assert result.checked == 40


async def test_two_handles_on_one_file_chain_correctly(tmp_path: Path) -> None:
    # A running server and the CLI may append to the same file.
    first = AuditLog(SqliteAuditRecords(tmp_path / "audit.db"))
    second = AuditLog(SqliteAuditRecords(tmp_path / "audit.db"))
    try:
        await asyncio.gather(
            *(first.append("server", "login.ok", f"s{i}", now_ms=T0) for i in range(10)),
            *(second.append("cli:op", "user.add", f"c{i}", now_ms=T0) for i in range(10)),
        )
        result = await first.verify()
    finally:
        await first.close()
        await second.close()
    assert result.ok, result.problems
    assert result.checked == 20


async def test_verify_empty_log(log: AuditLog) -> None:
    result = await log.verify()
    assert (result.ok, result.checked, result.problems) == (True, 0, [])


async def test_verify_survives_reopen_and_pages(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(SqliteAuditRecords(path))
    for i in range(1005):
        await log.append("server", "login.ok", f"u{i}", now_ms=T0 + i)
    await log.close()
    again = AuditLog(SqliteAuditRecords(path))
    try:
        result = await again.verify()
        nxt = await again.append("server", "login.ok", "last", now_ms=T0)
    finally:
        await again.close()
    assert result.ok and result.checked == 1005
    assert nxt.seq == 1006


@pytest.mark.parametrize(
    ("action", "detail"),
    [("", None), ("User.Add", None), ("user add", None), ("user.add", {"k": 1}), ("x" * 65, None)],
)
async def test_bad_entries_are_refused(log: AuditLog, action: str, detail: object) -> None:
    with pytest.raises((ValueError, msgspec.ValidationError)):
        await log.append("a", action, "t", detail, now_ms=T0)  # type: ignore[arg-type]
    assert await log.entries() == []


async def test_anchor_follows_every_append(tmp_path: Path, log: AuditLog) -> None:
    await log.append("a", "user.add", "t", now_ms=T0)
    e = await log.append("a", "user.add", "u", now_ms=T0)
    anchor = msgspec.json.decode((tmp_path / "audit.anchor").read_bytes())
    assert anchor == {"seq": e.seq, "hash": e.hash}


async def test_triggers_forbid_update_and_delete(tmp_path: Path, log: AuditLog) -> None:
    await log.append("a", "user.add", "t", now_ms=T0)
    with sqlite3.connect(tmp_path / "audit.db") as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE audit SET target = 'x'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM audit")
    assert (await log.verify()).ok


async def test_closed_log_refuses_appends(tmp_path: Path) -> None:
    log = AuditLog(SqliteAuditRecords(tmp_path / "audit.db"))
    await log.close()
    with pytest.raises(StorageError):
        await log.append("a", "user.add", "t", now_ms=T0)


async def test_over_long_and_hostile_fields_are_recorded_bounded(log: AuditLog) -> None:
    # uids may be 512 characters; the log must record them, not refuse them.
    uid = "u" * 600
    e = await log.append("op\nFAKE 2 server login.ok root", "groups.active", uid,
                         {"remote": "x\u202ey" + "z" * 2000}, now_ms=T0)
    assert len(e.target) <= 256 and e.target.startswith("u" * 200)
    assert e.target.endswith(f"...(+{600 - e.target.index('.')})")
    assert "\n" not in e.actor and e.actor.startswith("op\\u000aFAKE")
    assert "\u202e" not in e.detail["remote"] and e.detail["remote"].startswith("x\\u202ey")
    assert len(e.detail["remote"]) <= 1024
    assert await log.entries() == [e]
    assert (await log.verify()).ok


async def test_text_at_the_limit_is_kept_whole(log: AuditLog) -> None:
    e = await log.append("a" * 256, "user.add", "t" * 256, now_ms=T0)
    assert (e.actor, e.target) == ("a" * 256, "t" * 256)


async def test_lone_surrogates_are_escaped_not_fatal(log: AuditLog) -> None:
    e = await log.append("a", "user.add", "bad\ud800uid", now_ms=T0)
    assert e.target == "bad\\ud800uid"
    assert (await log.verify()).ok
