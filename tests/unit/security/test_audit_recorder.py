"""AuditRecorder: entries the log refuses are counted and skipped; the recorder keeps running."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rallypoint.clock import ManualClock
from rallypoint.security.audit import AuditLog
from rallypoint.services.auditing import AuditRecorder
from rallypoint.storage.sqlite.audit import SqliteAuditRecords


async def test_a_refused_entry_is_counted_and_later_entries_are_written(tmp_path: Path) -> None:
    log = AuditLog(SqliteAuditRecords(tmp_path / "audit.db"))
    recorder = AuditRecorder(log, ManualClock())
    task = asyncio.create_task(recorder.run())
    try:
        recorder.record("a", "Not An Action", "t")
        recorder.record("a", "user.add", "x" * 5000)
        recorder.record("a", "user.add", "after")
        recorder.stop()
        await asyncio.wait_for(task, timeout=10)
        entries = await log.entries()
        verification = await log.verify()
    finally:
        await log.close()
    assert recorder.failed == 1 and recorder.written == 2
    assert [e.target[:5] for e in entries] == ["xxxxx", "after"]
    assert verification.ok
    assert ("rallypoint_audit_failed", "Audit entries the log refused or could not store", 1.0) in recorder.counters()


async def test_a_storage_failure_does_not_end_the_recorder(tmp_path: Path) -> None:
    log = AuditLog(SqliteAuditRecords(tmp_path / "audit.db"))
    await log.close()  # every append now fails with StorageError
    recorder = AuditRecorder(log, ManualClock())
    task = asyncio.create_task(recorder.run())
    recorder.record("a", "user.add", "t")
    recorder.record("a", "user.add", "u")
    recorder.stop()
    await asyncio.wait_for(task, timeout=10)
    assert (recorder.failed, recorder.written) == (2, 0)
