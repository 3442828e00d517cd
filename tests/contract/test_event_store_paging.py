"""The EventStore contract for readers (group filter in the store) and keyset cursors, on every backend."""

from __future__ import annotations

from collections.abc import Callable

from rallypoint.storage.base import EventStore, HistoryQuery, HistoryReader, StoredEvent, readable

MakeEvent = Callable[..., StoredEvent]
T0 = 1_700_000_000_000


async def test_reader_sees_broadcasts_of_its_groups_and_its_own_addressed_rows(
    store: EventStore, ev: MakeEvent
) -> None:
    rows = [
        ev("a", groups={"A"}, time=T0),
        ev("b", groups={"B"}, time=T0 + 1),
        ev("ab", groups={"A", "B"}, time=T0 + 2),
        ev("sub", groups={"AA"}, time=T0 + 3),  # "A" must not match inside "AA"
        ev("comma", groups={"A,B"}, time=T0 + 4),  # one group whose name has a comma
        ev("team-a", groups={"C"}, team="A", time=T0 + 5),  # a team colour is not an access group
        ev("to-me", groups=(), sender="alice", time=T0 + 6),
        ev("to-other", groups=(), sender="bob", time=T0 + 7),
    ]
    await store.append(rows)

    def uids(found: list[StoredEvent]) -> list[str]:
        return [e.uid for e in found]

    alice = HistoryReader(groups=frozenset({"A"}), sender="alice")
    assert uids(await store.query(HistoryQuery(reader=alice))) == ["a", "ab", "to-me"]
    bob = HistoryReader(groups=frozenset({"B"}), sender="bob")
    assert uids(await store.query(HistoryQuery(reader=bob))) == ["b", "ab", "to-other"]
    admin = HistoryReader(groups=frozenset(), all_addressed=True)
    assert uids(await store.query(HistoryQuery(reader=admin))) == ["to-me", "to-other"]
    nobody = HistoryReader(groups=frozenset({"D"}))
    assert await store.query(HistoryQuery(reader=nobody)) == []
    comma = HistoryReader(groups=frozenset({"A,B", "AA"}))
    assert uids(await store.query(HistoryQuery(reader=comma))) == ["sub", "comma"]
    # The store applies the same rule as the Python predicate.
    for reader in (alice, bob, admin, nobody, comma):
        assert uids(await store.query(HistoryQuery(reader=reader))) == [r.uid for r in rows if readable(reader, r)]


async def test_reader_filter_applies_before_the_limit(store: EventStore, ev: MakeEvent) -> None:
    # 50 rows of another group come first: a store that filtered after the limit would answer nothing.
    others = [ev(f"b-{i}", groups={"B"}, time=T0 + i) for i in range(50)]
    await store.append([*others, ev("a-1", groups={"A"}, time=T0 + 99)])
    got = await store.query(HistoryQuery(reader=HistoryReader(groups=frozenset({"A"})), limit=1))
    assert [e.uid for e in got] == ["a-1"]


async def test_cursor_walks_every_row_once_in_both_orders(store: EventStore, ev: MakeEvent) -> None:
    # Several rows share a time, so the cursor needs the key as a tie-breaker.
    await store.append([ev(f"r-{i}", time=T0 + i // 3) for i in range(10)])
    for order in ("asc", "desc"):
        seen: list[str] = []
        after: tuple[int, int] | None = None
        for _ in range(10):
            page = await store.page(HistoryQuery(limit=4, order=order, after=after))  # type: ignore[arg-type]
            if not page:
                break
            seen.extend(e.uid for _, e in page)
            key, last = page[-1]
            after = (last.time, key)
        expected = [f"r-{i}" for i in range(10)]
        assert seen == (expected if order == "asc" else expected[::-1]), order
