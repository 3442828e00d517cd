"""Queue epochs: a node that lost its federation queue numbers from 1 again and the peer still accepts.

Two real ``PeerLink``s wired back to back as in ``test_replay.py``; alpha's queue file is deleted
between two runs, as after a replaced disk.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.federation.convert import (
    ack_event,
    acknowledgement,
    from_federated,
    to_federated,
)
from rallypoint.protocol.limits import Limits
from rallypoint.storage.sqlite.federation import SqliteFederationStore
from tests.unit.federation.test_convert import NOW, _event
from tests.unit.federation.test_link_budget import PEER, _envelope, _persisted
from tests.unit.federation.test_replay import ALPHA, _deliver, _drain, _side, _stop


def test_the_sequence_mark_carries_the_queue_epoch_both_ways() -> None:
    fed = to_federated(_event(), groups=["Blue"], node_id="alpha", now_ms=NOW, provenance=[], hops=(3, 1),
                       seq=7, lane="#urgent", epoch="00ff")
    back = from_federated(fed, Limits())
    assert (back.origin_node, back.seq, back.epoch) == ("alpha#urgent", 7, "00ff")
    assert b"_rpfed_" not in back.event.detail.xml
    ack = acknowledgement(ack_event("bravo#urgent", 7, NOW, "00ff"))
    assert ack is not None and (ack.node, ack.seq, ack.epoch) == ("bravo#urgent", 7, "00ff")


def test_a_mark_without_epoch_is_the_empty_epoch() -> None:
    """What nodes wrote before epochs existed (and what a queue from then still sends)."""
    fed = to_federated(_event(), groups=["Blue"], node_id="alpha", now_ms=NOW, provenance=[], hops=(3, 1), seq=7)
    assert '<_rpfed_ node="alpha" seq="7"/>' in fed.event.other
    back = from_federated(fed, Limits())
    assert (back.origin_node, back.seq, back.epoch) == ("alpha", 7, "")
    ack = acknowledgement(ack_event("bravo", 3, NOW))
    assert ack is not None and ack.epoch == ""


async def test_a_new_queue_gets_a_random_epoch_kept_across_restarts(tmp_path: Path) -> None:
    store = SqliteFederationStore(tmp_path / "federation.db")
    try:
        first = await store.backlog("bravo", "e1")
        again = await store.backlog("bravo", "e2")
        other = await store.backlog("charlie", "e3")
    finally:
        await store.close()
    assert (first.epoch, again.epoch, other.epoch) == ("e1", "e1", "e3")
    assert (first.created, again.created, other.created) == (True, False, True)


async def test_a_queue_file_from_before_epochs_keeps_its_numbers_and_marks(tmp_path: Path) -> None:
    path = tmp_path / "federation.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE outbound (peer TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
                               PRIMARY KEY (peer, seq)) WITHOUT ROWID;
        CREATE TABLE peers (peer TEXT PRIMARY KEY, next_seq INTEGER NOT NULL, acked INTEGER NOT NULL);
        CREATE TABLE seen (origin TEXT PRIMARY KEY, seq INTEGER NOT NULL);
        CREATE TABLE positions (peer TEXT NOT NULL, uid TEXT NOT NULL, ord INTEGER NOT NULL,
                                stale INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (peer, uid)) WITHOUT ROWID;
        INSERT INTO outbound VALUES ('bravo', 5, x'00');
        INSERT INTO peers VALUES ('bravo', 6, 4);
        INSERT INTO seen VALUES ('bravo#urgent', 9);
        PRAGMA user_version = 2;
    """)
    db.close()
    store = SqliteFederationStore(path)
    try:
        backlog = await store.backlog("bravo", "fresh")
        assert (backlog.epoch, backlog.next_seq, backlog.acked, backlog.rows) == ("", 6, 4, ((5, b"\x00"),))
        assert not backlog.created
        assert await store.seen() == {("bravo#urgent", ""): 9}
    finally:
        await store.close()


async def test_after_the_sender_lost_its_queue_every_new_message_arrives_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    seen: dict[tuple[str, str], int] = {}
    bravo = await _side(tmp_path / "bravo", clock, node="bravo", peer=ALPHA, seen=seen)
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        for i in range(3):
            alpha.link.offer(_envelope(clock, f"old-{i}", "b-t-f"))
        await _persisted(alpha.link, 3)
        alpha.link.attach()
        await _deliver(_drain(alpha.link), bravo.link)
        stale_acks = _drain(bravo.link)
        await _deliver(stale_acks, alpha.link)
        assert alpha.link.unacked == 0
        old_epoch = alpha.link._message.epoch
    finally:
        await _stop(alpha)
    (tmp_path / "alpha" / "federation.db").unlink()
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        assert alpha.link._message.epoch not in ("", old_epoch)
        for i in range(3):
            alpha.link.offer(_envelope(clock, f"new-{i}", "b-t-f"))
            alpha.link.offer(_envelope(clock, f"alert-{i}", "b-a-o-tbl"))
        await _persisted(alpha.link, 6)
        alpha.link.attach()
        # An acknowledgement of the lost queue arriving late must not retire the new messages 1..3.
        await _deliver(stale_acks, alpha.link)
        assert alpha.link.unacked == 6
        with caplog.at_level(logging.WARNING, logger="rallypoint.federation.inbound"):
            await _deliver(_drain(alpha.link), bravo.link)
        await _deliver(_drain(bravo.link), alpha.link)
        assert sorted(bravo.accepted) == sorted(
            [*(f"old-{i}" for i in range(3)), *(f"new-{i}" for i in range(3)), *(f"alert-{i}" for i in range(3))]
        )
        assert alpha.link.unacked == 0
        resets = [r.getMessage() for r in caplog.records if "queue reset" in r.getMessage()]
        # The message lane had an earlier epoch; the urgent lane is new to bravo (no reset to report).
        assert resets == [f"peer alpha queue reset (new epoch {alpha.link._message.epoch})"]
        assert {k: v for k, v in seen.items() if k[0].startswith("alpha")} == {
            ("alpha", old_epoch): 3, ("alpha", alpha.link._message.epoch): 3,
            ("alpha#urgent", alpha.link._urgent.epoch): 3,
        }
    finally:
        await _stop(alpha)
        await _stop(bravo)

