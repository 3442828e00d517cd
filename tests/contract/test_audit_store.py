"""AuditRecords contract: an append-only chain that stays unbroken with several writers at once."""

from __future__ import annotations

import asyncio
import hashlib
import itertools

from rallypoint.security.audit import AuditLog
from rallypoint.storage.base.audit import Anchor, AuditRow
from rallypoint.storage.factory import Stores


def builder(actor: str):  # type: ignore[no-untyped-def]
    def build(last_seq: int, last_hash: str | None) -> AuditRow:
        prev = last_hash or "0" * 64
        digest = hashlib.sha256(f"{last_seq + 1}{prev}{actor}".encode()).hexdigest()
        return AuditRow(last_seq + 1, 1000 + last_seq, actor, "test.append", "-", "{}", prev, digest)

    return build


async def test_appends_chain_from_the_previous_row_and_move_the_anchor(audit_stores: Stores) -> None:
    records = audit_stores.audit()
    try:
        assert await records.read_anchor() is None
        first = await records.append(builder("a"))
        second = await records.append(builder("b"))
        assert (first.seq, first.prev_hash) == (1, "0" * 64)
        assert (second.seq, second.prev_hash) == (2, first.hash)
        assert await records.rows() == [first, second]
        assert await records.rows(since_seq=1) == [second]
        assert await records.rows(limit=1) == [first]
        assert await records.read_anchor() == Anchor(seq=2, hash=second.hash)
    finally:
        await records.close()


async def test_concurrent_writers_form_one_unbroken_chain(audit_stores: Stores) -> None:
    writers = [audit_stores.audit() for _ in range(3)]
    try:
        await asyncio.gather(*(w.append(builder(f"w{i}-{n}")) for n in range(10) for i, w in enumerate(writers)))
        rows = await writers[0].rows(limit=100)
        assert [r.seq for r in rows] == list(range(1, 31))
        assert all(r.prev_hash == p.hash for p, r in itertools.pairwise(rows))
        anchor = await writers[1].read_anchor()
        assert anchor is not None and anchor.seq == 30
    finally:
        for w in writers:
            await w.close()


async def test_the_audit_log_verifies_over_the_backend(audit_stores: Stores) -> None:
    log = AuditLog(audit_stores.audit())
    try:
        await asyncio.gather(*(log.append("alice", "user.add", f"u{n}", {"n": str(n)}, now_ms=n) for n in range(5)))
        result = await log.verify()
        assert result.ok and result.checked == 5, result.problems
    finally:
        await log.close()
