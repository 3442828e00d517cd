"""The EventStore contract for picture rows: ``latest()`` and start-up reload see what the picture held."""

from __future__ import annotations

from rallypoint.storage.base import EventStore, HistoryQuery
from tests.support.stored import T0, MakeEvent

HOUR_S = 3600.0


async def test_a_refused_item_of_another_group_does_not_replace_the_marker(store: EventStore, ev: MakeEvent) -> None:
    marker = ev("x", type="b-m-p-s-m", groups={"Blue"}, stale_s=HOUR_S, lat=1.0)
    # Same uid from another group, later: delivered (history) but refused by presence.
    refused = ev("x", type="b-m-p-s-m", groups={"Red"}, time=T0 + 1, stale_s=HOUR_S, lat=2.0, picture=False)
    await store.append([marker, refused])

    assert await store.latest(now_ms=T0 + 2) == [marker]
    assert await store.latest(now_ms=T0 + 2, types_prefix=("b-m-p",)) == [marker]
    assert await store.query(HistoryQuery(uid="x")) == [marker, refused]


async def test_an_addressed_resend_does_not_hide_the_broadcast_marker(store: EventStore, ev: MakeEvent) -> None:
    marker = ev("x", type="b-m-p-s-m", groups={"Blue"}, stale_s=HOUR_S)
    resent = ev("x", type="b-m-p-s-m", groups=(), time=T0 + 1, stale_s=HOUR_S, sender="alice")
    await store.append([marker])
    await store.append([resent])

    assert await store.latest(now_ms=T0 + 2) == [marker]
    assert not resent.picture


async def test_a_uid_with_only_history_rows_is_not_latest(store: EventStore, ev: MakeEvent) -> None:
    await store.append([ev("chat", groups=(), stale_s=HOUR_S), ev("red", groups={"Red"}, picture=False)])

    assert await store.latest(now_ms=T0 + 1) == []


async def test_delete_marks_the_picture_row_not_a_later_history_row(store: EventStore, ev: MakeEvent) -> None:
    await store.append([
        ev("x", groups={"Blue"}, stale_s=HOUR_S),
        ev("x", groups=(), time=T0 + 1, stale_s=HOUR_S),
    ])

    await store.delete_uid("x")

    assert await store.latest(now_ms=T0 + 2) == []
    # A new picture row brings the uid back.
    again = ev("x", groups={"Blue"}, time=T0 + 2, stale_s=HOUR_S, lat=5.0)
    await store.append([again])
    assert await store.latest(now_ms=T0 + 3) == [again]


async def test_prune_drops_old_history_rows_but_keeps_the_live_picture_row(store: EventStore, ev: MakeEvent) -> None:
    marker = ev("x", type="b-m-p-s-m", groups={"Blue"}, stale_s=365 * 86400.0)
    await store.append([
        marker,
        ev("x", type="b-m-p-s-m", groups={"Red"}, time=T0 + 1, stale_s=365 * 86400.0, picture=False),
        ev("x", type="b-m-p-s-m", groups=(), time=T0 + 2, stale_s=365 * 86400.0),
    ])

    assert await store.prune(T0 + 60_000) == 2

    assert await store.query(HistoryQuery()) == [marker]
    assert await store.latest(now_ms=T0 + 120_000) == [marker]
