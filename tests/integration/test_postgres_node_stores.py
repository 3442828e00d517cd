"""Per-node stores on one shared PostgreSQL database: each node's mailbox and federation queues stay its own."""

from __future__ import annotations

from pathlib import Path

from rallypoint.storage.base.mailbox import MailboxBatch, MailRecord
from rallypoint.storage.factory import open_stores
from tests.support.postgres import PostgresDatabase


async def test_nodes_sharing_a_database_keep_their_mail_and_queues_apart(
    tmp_path: Path, postgres_database: PostgresDatabase
) -> None:
    dsn = await postgres_database.fresh()
    one, two = open_stores(dsn, tmp_path / "a", node_id="node-a"), open_stores(dsn, tmp_path / "b", node_id="node-b")
    box_a, box_b = one.mailbox(), two.mailbox()
    fed_a, fed_b = one.federation(), two.federation()
    try:
        # Both nodes number their first mail 1; neither sees the other's.
        for box, text in ((box_a, b"<a/>"), (box_b, b"<b/>")):
            mail = MailRecord(seq=1, xml=text, groups=frozenset({"A"}), priority=1, created_ms=0, expires_ms=10**15)
            await box.apply(MailboxBatch(mails=((mail, ("uid:X",)),)))
        assert [m.xml for m in box_a.load_state(1).pending["uid:X"]] == [b"<a/>"]
        assert [m.xml for m in box_b.load_state(1).pending["uid:X"]] == [b"<b/>"]
        await box_a.apply(MailboxBatch(cursors=(("uid:X", 1),)))
        assert await box_a.purge(1) == 1
        assert box_b.load_state(1).pending["uid:X"][0].xml == b"<b/>"

        assert (await fed_a.backlog("peer", "ea")).created
        assert (await fed_b.backlog("peer", "eb")).created
        await fed_a.append("peer", [(1, b"from a")])
        await fed_b.mark_seen("origin", "e", 4)
        assert (await fed_b.backlog("peer", "x")).rows == ()
        assert (await fed_a.backlog("peer", "x")).rows == ((1, b"from a"),)
        assert await fed_a.seen() == {}
    finally:
        for store in (box_a, box_b, fed_a, fed_b):
            await store.close()
