"""The mailbox write queue keeps a batch that failed and writes it again; nothing is dropped."""

from __future__ import annotations

from pathlib import Path

from rallypoint.clock import ManualClock
from rallypoint.errors import StorageError
from rallypoint.services.mailbox_writer import MailboxWriter
from rallypoint.storage.sqlite.mailbox import MailboxBatch, MailRecord, SqliteMailboxStore, load_state


class FailingOnceStore(SqliteMailboxStore):
    """The real SQLite store, whose first write fails as a full disk would."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failures_left = 1

    async def apply(self, batch: MailboxBatch) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise StorageError("disk full")
        await super().apply(batch)


def _mail(seq: int) -> MailRecord:
    return MailRecord(seq=seq, xml=b"<event/>", groups=frozenset({"__ANON__"}), priority=1,
                      created_ms=0, expires_ms=10**15)


async def test_failed_batch_is_written_again_in_order(tmp_path: Path) -> None:
    store = FailingOnceStore(tmp_path / "mailbox.db")
    writer = MailboxWriter(store, ManualClock())
    writer.add_mail(_mail(1), ("uid:b",))
    writer.add_mail(_mail(2), ("uid:b",))
    assert writer.unwritten == 2
    await writer.flush()
    # The first attempt failed; the retry, started from the same task, wrote both.
    writer.add_mail(_mail(3), ("uid:b",))
    await writer.close()
    await store.close()
    assert writer.write_errors == 1
    assert writer.unwritten == 0
    state = load_state(tmp_path / "mailbox.db", 0)
    assert [m.seq for m in state.pending["uid:b"]] == [1, 2, 3]


async def test_single_deliveries_are_written_after_their_message(tmp_path: Path) -> None:
    store = SqliteMailboxStore(tmp_path / "mailbox.db")
    writer = MailboxWriter(store, ManualClock())
    # More mail than one batch holds: the last message is inserted by the second batch, so marking it
    # delivered must wait for that batch, or the insert would bring it back.
    count = 501
    for seq in range(1, count + 1):
        writer.add_mail(_mail(seq), ("uid:b",))
    writer.mark_delivered("uid:b", 2)
    writer.mark_delivered("uid:b", count)
    await writer.close()
    await store.close()
    assert writer.unwritten == 0
    pending = [m.seq for m in load_state(tmp_path / "mailbox.db", 0).pending["uid:b"]]
    assert 2 not in pending and count not in pending
    assert len(pending) == count - 2
