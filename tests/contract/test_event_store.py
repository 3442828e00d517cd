"""The EventStore contract, run against every backend (see the ``store`` fixture)."""

from __future__ import annotations

from collections.abc import Callable

from rallypoint.storage.base import EventStore, HistoryQuery, StoredEvent

MakeEvent = Callable[..., StoredEvent]
T0 = 1_700_000_000_000  # the default event time of the ``ev`` fixture
MIN = 60_000


async def test_round_trip_preserves_every_field(store: EventStore, ev: MakeEvent) -> None:
    original = ev(
        "rt-1", hae=123.5, callsign='Alpha <&> "1"', team="Cyan", groups={"Blue, Red", "Ops"},
        sender="cert:alpha", received=T0 + 7,
    )
    bare = ev("rt-2", time=T0 + 1, groups=())
    await store.append([original, bare])

    got = await store.query(HistoryQuery())

    assert got == [original, bare]
    assert got[0].groups == frozenset({"Blue, Red", "Ops"}) and got[0].team == "Cyan" and got[0].picture
    assert got[1].callsign is None and got[1].team is None and got[1].sender is None
    assert got[1].groups == frozenset() and not got[1].picture


async def test_empty_append_is_a_no_op(store: EventStore) -> None:
    await store.append([])
    assert await store.query(HistoryQuery()) == []


async def test_time_window_is_half_open(store: EventStore, ev: MakeEvent) -> None:
    events = [ev(f"t-{i}", time=T0 + i * MIN) for i in range(5)]
    await store.append(events)

    got = await store.query(HistoryQuery(since_ms=T0 + MIN, until_ms=T0 + 3 * MIN))
    assert [e.uid for e in got] == ["t-1", "t-2"]

    assert [e.uid for e in await store.query(HistoryQuery(since_ms=T0 + 3 * MIN))] == ["t-3", "t-4"]
    assert [e.uid for e in await store.query(HistoryQuery(until_ms=T0 + MIN))] == ["t-0"]


async def test_filter_by_uid(store: EventStore, ev: MakeEvent) -> None:
    await store.append([ev("a", time=T0), ev("b", time=T0 + 1), ev("a", time=T0 + 2), ev("ab", time=T0 + 3)])

    got = await store.query(HistoryQuery(uid="a"))

    assert [(e.uid, e.time) for e in got] == [("a", T0), ("a", T0 + 2)]


async def test_filter_by_type_prefix(store: EventStore, ev: MakeEvent) -> None:
    await store.append(
        [
            ev("f1", type="a-f-G-U-C"),
            ev("f2", type="a-f-A"),
            ev("h1", type="a-h-G"),
            ev("m1", type="b-m-p-s-p-i"),
            ev("m2", type="b-m-q"),
            ev("u1", type="u-d-f"),
        ]
    )

    async def uids(prefix: str) -> set[str]:
        return {e.uid for e in await store.query(HistoryQuery(type_prefix=prefix))}

    assert await uids("a-f") == {"f1", "f2"}
    assert await uids("a-") == {"f1", "f2", "h1"}
    assert await uids("b-m-p") == {"m1"}
    assert await uids("a-f-G-U-C") == {"f1"}
    assert await uids("x") == set()


async def test_filter_by_bbox_excludes_outside_and_includes_edges(store: EventStore, ev: MakeEvent) -> None:
    await store.append(
        [
            ev("inside", lon=10.5, lat=50.5),
            ev("edge", lon=11.0, lat=50.0),
            ev("west", lon=9.99, lat=50.5),
            ev("north", lon=10.5, lat=51.01),
            ev("far", lon=-70.0, lat=-30.0),
        ]
    )

    got = await store.query(HistoryQuery(bbox=(10.0, 50.0, 11.0, 51.0)))

    assert {e.uid for e in got} == {"inside", "edge"}


async def test_bbox_across_the_antimeridian(store: EventStore, ev: MakeEvent) -> None:
    await store.append(
        [ev("east", lon=179.5, lat=0.0), ev("west", lon=-179.5, lat=0.0), ev("greenwich", lon=0.0, lat=0.0)]
    )

    got = await store.query(HistoryQuery(bbox=(179.0, -1.0, -179.0, 1.0)))

    assert {e.uid for e in got} == {"east", "west"}


async def test_no_fix_rows_are_in_no_bbox(store: EventStore, ev: MakeEvent) -> None:
    # 0,0 is what a device without GPS reports: an area query around it must not return it.
    await store.append(
        [ev("no-fix", lon=0.0, lat=0.0), ev("equator", lon=0.5, lat=0.0), ev("meridian", lon=0.0, lat=0.5)]
    )

    got = await store.query(HistoryQuery(bbox=(-1.0, -1.0, 1.0, 1.0)))

    assert {e.uid for e in got} == {"equator", "meridian"}
    # Without an area the row is still history.
    assert "no-fix" in {e.uid for e in await store.query(HistoryQuery())}


async def test_combined_filters(store: EventStore, ev: MakeEvent) -> None:
    await store.append(
        [
            ev("x", type="a-f-G", time=T0, lon=1.0, lat=1.0),
            ev("x", type="a-f-G", time=T0 + MIN, lon=5.0, lat=5.0),
            ev("x", type="b-m-p", time=T0 + MIN, lon=1.0, lat=1.0),
            ev("y", type="a-f-G", time=T0 + MIN, lon=1.0, lat=1.0),
            ev("x", type="a-f-G", time=T0 + 2 * MIN, lon=1.0, lat=1.0),
        ]
    )

    got = await store.query(
        HistoryQuery(
            since_ms=T0, until_ms=T0 + 2 * MIN, uid="x", type_prefix="a-f", bbox=(0.0, 0.0, 2.0, 2.0)
        )
    )

    assert [(e.uid, e.time, e.lon) for e in got] == [("x", T0, 1.0)]


async def test_order_and_limit(store: EventStore, ev: MakeEvent) -> None:
    # Appended out of time order; "tie-a" and "tie-b" share a time and keep arrival order.
    await store.append([ev("late", time=T0 + 3), ev("tie-a", time=T0 + 1), ev("early", time=T0)])
    await store.append([ev("tie-b", time=T0 + 1)])

    asc = await store.query(HistoryQuery(order="asc"))
    desc = await store.query(HistoryQuery(order="desc"))
    limited = await store.query(HistoryQuery(order="desc", limit=2))

    assert [e.uid for e in asc] == ["early", "tie-a", "tie-b", "late"]
    assert [e.uid for e in desc] == ["late", "tie-b", "tie-a", "early"]
    assert [e.uid for e in limited] == ["late", "tie-b"]
    assert [e.uid for e in await store.query(HistoryQuery(limit=1))] == ["early"]


async def test_latest_returns_one_event_per_uid_the_newest(store: EventStore, ev: MakeEvent) -> None:
    await store.append([ev("m", time=T0, lat=1.0), ev("m", time=T0 + 2 * MIN, lat=3.0), ev("n", time=T0)])
    # Arrives last but is older: it must not replace the newer event.
    await store.append([ev("m", time=T0 + MIN, lat=2.0)])

    got = await store.latest(now_ms=T0 + 10)

    assert [(e.uid, e.lat) for e in got] == [("n", 10.0), ("m", 3.0)]


async def test_latest_excludes_stale(store: EventStore, ev: MakeEvent) -> None:
    await store.append(
        [
            ev("long", time=T0, stale_s=3600),
            ev("short", time=T0, stale_s=10),
            # The newest "flip" is stale; its older, still-valid event must not stand in.
            ev("flip", time=T0, stale_s=3600),
            ev("flip", time=T0 + 1000, stale_s=5),
        ]
    )

    got = await store.latest(now_ms=T0 + 20_000)

    assert [e.uid for e in got] == ["long"]
    # Stale exactly at now counts as stale.
    assert [e.uid for e in await store.latest(now_ms=T0 + 3600_000)] == []


async def test_latest_filters_by_type_prefixes(store: EventStore, ev: MakeEvent) -> None:
    await store.append(
        [
            ev("marker", type="b-m-p-s-m", stale_s=3600),
            ev("shape", type="u-d-f", stale_s=3600),
            ev("pli", type="a-f-G-U-C", stale_s=3600),
            # Its latest type no longer matches, so it is not replayed as a marker.
            ev("changed", type="b-m-p-s-m", stale_s=3600),
            ev("changed", type="a-f-G", time=T0 + 1, stale_s=3600),
        ]
    )

    got = await store.latest(now_ms=T0 + 1, types_prefix=("b-m-p", "u-d-"))

    assert {e.uid for e in got} == {"marker", "shape"}
    assert await store.latest(now_ms=T0 + 1, types_prefix=()) == []


async def test_latest_excludes_deleted_until_the_uid_is_sent_again(store: EventStore, ev: MakeEvent) -> None:
    await store.append([ev("gone", time=T0, stale_s=3600), ev("gone", time=T0 + 1, stale_s=3600)])
    await store.append([ev("kept", time=T0, stale_s=3600)])

    await store.delete_uid("gone")
    await store.delete_uid("never-seen")

    assert [e.uid for e in await store.latest(now_ms=T0 + 2)] == ["kept"]
    # Deleted items remain history.
    assert len(await store.query(HistoryQuery(uid="gone"))) == 2

    await store.append([ev("gone", time=T0 + 5, stale_s=3600, lat=7.0)])
    got = await store.latest(now_ms=T0 + 6)
    assert [(e.uid, e.lat) for e in got] == [("kept", 10.0), ("gone", 7.0)]


async def test_prune_removes_old_history_and_counts(store: EventStore, ev: MakeEvent) -> None:
    await store.append([ev(f"p-{i}", time=T0 + i * MIN, stale_s=30) for i in range(10)])

    removed = await store.prune(T0 + 4 * MIN)

    assert removed == 4
    assert [e.uid for e in await store.query(HistoryQuery())] == [f"p-{i}" for i in range(4, 10)]
    assert await store.prune(T0 + 4 * MIN) == 0


async def test_prune_keeps_the_live_latest_event_of_a_uid(store: EventStore, ev: MakeEvent) -> None:
    year_s = 365 * 86400
    await store.append(
        [
            ev("marker", type="b-m-p", time=T0, stale_s=year_s, lat=1.0),
            ev("marker", type="b-m-p", time=T0 + MIN, stale_s=year_s, lat=2.0),
            ev("deleted", type="b-m-p", time=T0, stale_s=year_s),
            ev("pli", time=T0, stale_s=60),
        ]
    )
    await store.delete_uid("deleted")

    removed = await store.prune(T0 + 10 * MIN)

    # The superseded marker update, the deleted marker and the expired PLI go.
    assert removed == 3
    remaining = await store.query(HistoryQuery())
    assert [(e.uid, e.lat) for e in remaining] == [("marker", 2.0)]
    assert [e.uid for e in await store.latest(now_ms=T0 + 20 * MIN)] == ["marker"]


async def test_prune_then_append_keeps_latest_consistent(store: EventStore, ev: MakeEvent) -> None:
    await store.append([ev("a", time=T0, stale_s=30)])
    assert await store.prune(T0 + MIN) == 1

    await store.append([ev("a", time=T0 + 2 * MIN, stale_s=30, lat=5.0)])

    assert [(e.uid, e.lat) for e in await store.latest(now_ms=T0 + 2 * MIN)] == [("a", 5.0)]


async def test_large_batches_keep_every_row_in_append_order(store: EventStore, ev: MakeEvent) -> None:
    # Sizes around the SQLite store's chunking (statements of 256, 32 and 1 rows): every row once,
    # with its own values, equal times ordered as appended.
    sizes = [2000, 289, 31, 1, 256, 33]
    batches: list[list[StoredEvent]] = []
    n = 0
    for size in sizes:
        batch = []
        for _ in range(size):
            groups = () if n % 7 == 0 else ({"Blue"} if n % 2 else {"Red", "Blue"})
            batch.append(ev(f"big-{n}", time=T0 + n // 3, groups=groups, callsign=f"c{n}", received=T0 + n))
            n += 1
        batches.append(batch)
    for batch in batches:
        await store.append(batch)

    got = await store.query(HistoryQuery(limit=10_000))

    assert got == [e for batch in batches for e in batch]
