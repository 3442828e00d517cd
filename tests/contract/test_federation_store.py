"""FederationRecords contract: durable per-peer queues, epochs, kept positions and de-duplication marks."""

from __future__ import annotations

from rallypoint.storage.base.federation import FederationRecords


async def test_a_queue_is_created_once_with_its_epoch(federation_records: FederationRecords) -> None:
    first = await federation_records.backlog("peer-a", "epoch-1")
    assert (first.epoch, first.next_seq, first.acked, first.rows, first.created) == ("epoch-1", 1, 0, (), True)
    again = await federation_records.backlog("peer-a", "epoch-2")
    assert (again.epoch, again.created) == ("epoch-1", False)


async def test_rows_wait_until_acknowledged_and_numbers_never_go_back(federation_records: FederationRecords) -> None:
    await federation_records.backlog("peer-a", "e")
    await federation_records.append("peer-a", [(1, b"one"), (2, b"two"), (3, b"three")])
    await federation_records.append("peer-b", [(1, b"other peer")])
    await federation_records.acknowledge("peer-a", 2)
    backlog = await federation_records.backlog("peer-a", "unused")
    assert (backlog.next_seq, backlog.acked, backlog.rows) == (4, 2, ((3, b"three"),))
    await federation_records.acknowledge("peer-a", 3)
    await federation_records.acknowledge("peer-a", 1)  # late, lower: the mark stays
    emptied = await federation_records.backlog("peer-a", "unused")
    assert (emptied.next_seq, emptied.acked, emptied.rows) == (4, 3, ())
    other = await federation_records.backlog("peer-b", "unused")
    assert other.rows == ((1, b"other peer"),)


async def test_trim_drops_without_acknowledging(federation_records: FederationRecords) -> None:
    await federation_records.backlog("p", "e")
    await federation_records.append("p", [(1, b"1"), (2, b"2"), (3, b"3")])
    await federation_records.trim("p", 2)
    backlog = await federation_records.backlog("p", "e")
    assert (backlog.acked, backlog.rows) == (0, ((3, b"3"),))


async def test_a_new_epoch_renumbers_the_waiting_rows(federation_records: FederationRecords) -> None:
    await federation_records.backlog("p", "old")
    await federation_records.append("p", [(7, b"7"), (8, b"8")])
    await federation_records.acknowledge("p", 6)
    await federation_records.new_epoch("p", "new", [(1, b"7"), (2, b"8")])
    backlog = await federation_records.backlog("p", "unused")
    assert (backlog.epoch, backlog.next_seq, backlog.acked, backlog.rows) == ("new", 3, 0, ((1, b"7"), (2, b"8")))


async def test_kept_positions_are_the_latest_per_uid_in_order_until_stale(
    federation_records: FederationRecords,
) -> None:
    await federation_records.save_positions("p", [("u1", 1, 100, b"a"), ("u2", 2, 500, b"b")], [])
    await federation_records.save_positions("p", [("u1", 3, 500, b"a2")], [])
    await federation_records.save_positions("q", [("u9", 1, 500, b"z")], [])
    assert await federation_records.positions("p", 50) == [("u2", 2, 500, b"b"), ("u1", 3, 500, b"a2")]
    await federation_records.save_positions("p", [], ["u2"])
    assert await federation_records.positions("p", 50) == [("u1", 3, 500, b"a2")]
    await federation_records.prune_positions("p", 500)
    assert await federation_records.positions("p", 0) == []
    assert await federation_records.positions("q", 499) == [("u9", 1, 500, b"z")]
    assert await federation_records.positions("q", 500) == []


async def test_seen_marks_only_move_forward(federation_records: FederationRecords) -> None:
    assert await federation_records.seen() == {}
    await federation_records.mark_seen("node-a", "e1", 5)
    await federation_records.mark_seen("node-a", "e1", 3)
    await federation_records.mark_seen("node-a", "e2", 1)
    await federation_records.mark_seen("node-b", "", 9)
    assert await federation_records.seen() == {("node-a", "e1"): 5, ("node-a", "e2"): 1, ("node-b", ""): 9}
