"""Outbox: ordering with aging, coalescing, bounds, stale handling, accounting."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rallypoint.delivery.outbox import DEFAULT_MAX_WAIT_MS, DEFAULT_SIZE_ESTIMATE, Outbox
from rallypoint.model.cot import CotEvent, Detail, Point
from rallypoint.model.cot_type import COALESCED_CLASSES, DELETE, Priority
from rallypoint.routing.envelope import Envelope, Origin
from tests.unit.delivery.support import FAR_FUTURE_MS, envelope

WAITS = {Priority.MESSAGE: 50, Priority.POSITION: 100, Priority.OTHER_POSITION: 200, Priority.BULK: 300}


def put(box: Outbox, prio: Priority, uid: str, now: int, **kw: int) -> Envelope:
    env = envelope(prio, uid, tag=now, **kw)
    box.put(env, now_ms=now, own_group=prio is not Priority.OTHER_POSITION)
    return env


def drain(box: Outbox, now: int) -> list[Envelope]:
    out = []
    while (env := box.pop(now)) is not None:
        out.append(env)
    return out


def delete_of(uid: str, *, tag: int = 0) -> Envelope:
    """A ``t-x-d-d`` that removes ``uid`` (linked by ``<link uid=...>``), as ATAK sends it."""
    event = CotEvent(
        uid=f"del-{uid}-{tag}", type=DELETE, how="h-g-i-g-o", time=tag, start=tag, stale=FAR_FUTURE_MS,
        point=Point(0.0, 0.0), detail=Detail(link_uid=uid, link_relation="p-p"),
    )
    return Envelope(event, Origin(session_id="s"), tag)


def check_accounting(box: Outbox) -> None:
    s = box.statistics()
    assert s.offered == (s.returned + s.queued + s.coalesced + s.dropped_overflow + s.dropped_stale + s.cleared
                         + s.dropped_deleted)
    assert s.queued == sum(s.queued_by_class.values()) == len(box)


# --- examples ------------------------------------------------------------------------------------


def test_strict_priority_without_aging() -> None:
    box = Outbox()
    bulk = put(box, Priority.BULK, "b", 0)
    other = put(box, Priority.OTHER_POSITION, "o", 0)
    pos = put(box, Priority.POSITION, "p", 0)
    msg = put(box, Priority.MESSAGE, "m", 0)
    emg = put(box, Priority.EMERGENCY, "e", 0)
    assert drain(box, 1) == [emg, msg, pos, other, bulk]
    assert box.statistics().queued_by_class["OTHER_POSITION"] == 0


def test_overdue_bulk_goes_before_fresh_messages() -> None:
    box = Outbox(max_wait_ms=WAITS)
    bulk = put(box, Priority.BULK, "b", 0)
    fresh = put(box, Priority.MESSAGE, "m", 290)
    assert box.peek(299) is fresh
    assert box.pop(300) is bulk  # waited 300 ms = its max wait: overdue
    assert box.pop(300) is fresh
    assert box.statistics().aged == 1


def test_emergency_is_never_delayed_by_aging() -> None:
    box = Outbox(max_wait_ms=WAITS)
    put(box, Priority.BULK, "b", 0)
    emg = put(box, Priority.EMERGENCY, "e", 10_000)
    assert box.pop(10_000) is emg


def test_coalesced_uid_keeps_its_place_and_latest_wins() -> None:
    box = Outbox()
    put(box, Priority.POSITION, "a", 0)
    put(box, Priority.POSITION, "b", 1)
    newest_a = put(box, Priority.POSITION, "a", 2)
    popped = drain(box, 3)
    assert [e.event.uid for e in popped] == ["a", "b"]
    assert popped[0] is newest_a
    assert box.statistics().coalesced == 1


def test_messages_are_never_coalesced() -> None:
    box = Outbox()
    first = put(box, Priority.MESSAGE, "same", 0)
    second = put(box, Priority.MESSAGE, "same", 1)
    assert drain(box, 2) == [first, second]


def test_own_and_other_positions_of_one_uid_are_separate_classes() -> None:
    box = Outbox()
    other = put(box, Priority.OTHER_POSITION, "u", 0)
    own = put(box, Priority.POSITION, "u", 0)
    assert drain(box, 1) == [own, other]


def test_stale_items_are_dropped_not_returned() -> None:
    box = Outbox()
    assert not box.put(envelope(Priority.MESSAGE, "gone", stale=5), now_ms=5)
    put(box, Priority.MESSAGE, "soon", 0, stale=10)
    keep = put(box, Priority.MESSAGE, "keep", 0)
    assert drain(box, 10) == [keep]
    assert box.statistics().dropped_stale == 2
    check_accounting(box)


def test_overflow_by_items_drops_oldest_least_urgent() -> None:
    box = Outbox(max_items=3)
    put(box, Priority.BULK, "b1", 0)
    b2 = put(box, Priority.BULK, "b2", 1)
    pos = put(box, Priority.POSITION, "p", 2)
    msg = put(box, Priority.MESSAGE, "m", 3)
    assert drain(box, 4) == [msg, pos, b2]
    assert box.statistics().dropped_overflow == 1


def test_overflow_never_drops_more_urgent_for_less_urgent() -> None:
    box = Outbox(max_items=2)
    m1 = put(box, Priority.MESSAGE, "m1", 0)
    m2 = put(box, Priority.MESSAGE, "m2", 0)
    assert not box.put(envelope(Priority.POSITION, "p"), now_ms=1)
    assert drain(box, 2) == [m1, m2]
    assert box.statistics().dropped_overflow == 1


def test_overflow_by_bytes() -> None:
    box = Outbox(max_items=100, max_bytes=1000)
    put(box, Priority.POSITION, "p1", 0, raw_size=400)
    put(box, Priority.POSITION, "p2", 0, raw_size=400)
    put(box, Priority.MESSAGE, "m", 0, raw_size=500)
    assert box.bytes == 900
    assert [e.event.uid for e in drain(box, 1)] == ["m", "p2"]
    assert not box.put(envelope(Priority.MESSAGE, "huge"), now_ms=1, size=1001)


def test_size_argument_overrides_estimate() -> None:
    box = Outbox()
    box.put(envelope(Priority.MESSAGE, "a"), now_ms=0, size=123)
    box.put(envelope(Priority.MESSAGE, "b"), now_ms=0)
    assert box.bytes == 123 + DEFAULT_SIZE_ESTIMATE


def test_clear_is_counted() -> None:
    box = Outbox()
    put(box, Priority.MESSAGE, "a", 0)
    box.clear()
    assert len(box) == 0 and box.bytes == 0
    check_accounting(box)


def test_delete_drops_queued_reports_of_the_deleted_uid() -> None:
    # The delete jumps the queue; an older position of the same uid popped after it would make a
    # receiver that is behind re-create the contact it just removed.
    box = Outbox()
    put(box, Priority.POSITION, "x", 0)
    put(box, Priority.OTHER_POSITION, "x", 0)
    put(box, Priority.BULK, "x", 0)
    put(box, Priority.MESSAGE, "x", 0)  # a marker of uid x (persistent items are messages)
    keep_emergency = put(box, Priority.EMERGENCY, "x", 0)
    keep_msg = put(box, Priority.MESSAGE, "chat-1", 0)
    keep_pos = put(box, Priority.POSITION, "y", 0)
    delete = delete_of("x", tag=1)
    assert box.put(delete, now_ms=1)
    assert box.statistics().dropped_deleted == 4
    # Reported again after the delete: a new contact, delivered after the delete.
    again = put(box, Priority.POSITION, "x", 2)
    assert drain(box, 3) == [keep_emergency, delete, keep_msg, keep_pos, again]
    check_accounting(box)
    assert box.bytes == 0


def test_delete_of_an_unknown_uid_drops_nothing() -> None:
    box = Outbox()
    pos = put(box, Priority.POSITION, "y", 0)
    delete = delete_of("x")
    box.put(delete, now_ms=0)
    assert drain(box, 1) == [delete, pos]
    assert box.statistics().dropped_deleted == 0


def test_rejects_empty_bounds() -> None:
    with pytest.raises(ValueError):
        Outbox(max_items=0)


# --- properties ----------------------------------------------------------------------------------

CLASSES = st.sampled_from(list(Priority))
UIDS = st.sampled_from(["u0", "u1", "u2", "u3", "u4"])


@dataclass
class _Slot:
    prio: Priority
    uid: str
    env: Envelope
    queued_ms: int


class ReferenceOutbox:
    """The documented ordering rules, written as plainly as possible (no bounds, no stale)."""

    def __init__(self, waits: dict[Priority, int]) -> None:
        self.waits = waits
        self.slots: list[_Slot] = []

    def put(self, prio: Priority, env: Envelope, now: int) -> None:
        deleted = env.event.detail.link_uid if env.event.type == DELETE else None
        if deleted is not None:
            self.slots = [s for s in self.slots if s.uid != deleted or s.prio <= prio]
        if prio in COALESCED_CLASSES:
            for slot in self.slots:
                if slot.prio is prio and slot.uid == env.event.uid:
                    slot.env = env
                    return
        self.slots.append(_Slot(prio, env.event.uid, env, now))

    def pop(self, now: int) -> Envelope | None:
        heads: dict[Priority, _Slot] = {}
        for slot in self.slots:
            heads.setdefault(slot.prio, slot)
        if not heads:
            return None
        if Priority.EMERGENCY in heads:
            chosen = heads[Priority.EMERGENCY]
        else:
            overdue = [s for p, s in heads.items() if now - s.queued_ms >= self.waits[p]]
            pool = overdue or list(heads.values())
            key = (lambda s: (s.queued_ms, s.prio)) if overdue else (lambda s: s.prio)
            chosen = min(pool, key=key)
        self.slots.remove(chosen)
        return chosen.env


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), CLASSES, UIDS, st.integers(0, 150)),
        st.tuples(st.just("delete"), st.just(Priority.EMERGENCY), UIDS, st.integers(0, 150)),
        st.tuples(st.just("pop"), st.just(Priority.BULK), st.just(""), st.integers(0, 150)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_pop_order_matches_the_documented_rules(ops: list[tuple[str, Priority, str, int]]) -> None:
    box = Outbox(max_wait_ms=WAITS)
    ref = ReferenceOutbox({Priority.EMERGENCY: DEFAULT_MAX_WAIT_MS[Priority.EMERGENCY], **WAITS})
    offered_at: dict[int, int] = {}  # id(envelope) -> when it was offered
    deleted_at: dict[str, int] = {}  # uid -> when the last delete of it that popped was offered

    def popped(env: Envelope | None) -> None:
        # Once a delete of X has popped, nothing of X offered before that delete may follow it.
        if env is None:
            return
        if env.event.type == DELETE and env.event.detail.link_uid is not None:
            deleted_at[env.event.detail.link_uid] = offered_at[id(env)]
        elif env.priority is not Priority.EMERGENCY:
            assert offered_at[id(env)] > deleted_at.get(env.event.uid, -1)

    now = 0
    for i, (op, prio, uid, dt) in enumerate(ops):
        now += dt
        if op in ("put", "delete"):
            env = envelope(prio, uid, tag=i) if op == "put" else delete_of(uid, tag=i)
            offered_at[id(env)] = i
            box.put(env, now_ms=now, own_group=prio is not Priority.OTHER_POSITION)
            ref.put(prio, env, now)
        else:
            got = box.pop(now)
            assert got is ref.pop(now)
            popped(got)
        assert len(box) == len(ref.slots)
    rest = drain(box, now)
    assert rest == [e for e in iter(lambda: ref.pop(now), None)]
    for env in rest:
        popped(env)
    check_accounting(box)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(CLASSES, UIDS, st.integers(0, 20), st.booleans()), max_size=100))
def test_coalescing_keeps_one_per_uid_and_the_latest(ops: list[tuple[Priority, str, int, bool]]) -> None:
    box = Outbox()
    latest: dict[tuple[Priority, str], Envelope] = {}
    now = 0
    for i, (prio, uid, dt, do_pop) in enumerate(ops):
        now += dt
        env = envelope(prio, uid, tag=i)
        box.put(env, now_ms=now, own_group=prio is not Priority.OTHER_POSITION)
        latest[(prio, uid)] = env
        if do_pop:
            box.pop(now)
        queued = box.statistics().queued_by_class
        for cls in COALESCED_CLASSES:
            assert queued[cls.name] <= 5  # one per uid at most
    for env in drain(box, now):
        if env.priority in COALESCED_CLASSES:
            # Own and other positions of one uid share a type; either may be the one returned.
            candidates = [latest.get((p, env.event.uid)) for p in COALESCED_CLASSES]
            assert env in candidates


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(600, 4000),
    st.lists(
        st.tuples(CLASSES, UIDS, st.integers(0, 30), st.integers(10, 900), st.integers(0, 60), st.booleans(),
                  st.booleans()),
        max_size=120,
    ),
)
def test_bounds_stale_and_accounting_under_random_load(
    max_items: int, max_bytes: int, ops: list[tuple[Priority, str, int, int, int, bool, bool]]
) -> None:
    box = Outbox(max_items=max_items, max_bytes=max_bytes, max_wait_ms=WAITS)
    now = 0
    for i, (prio, uid, dt, size, life, do_pop, is_delete) in enumerate(ops):
        now += dt
        before = box.statistics().queued_by_class
        if is_delete:
            env = delete_of(uid, tag=i)
            prio = Priority.EMERGENCY
        else:
            env = envelope(prio, uid, stale=now + life, raw_size=size, tag=i)
        box.put(env, now_ms=now, own_group=prio is not Priority.OTHER_POSITION)
        after = box.statistics().queued_by_class
        # Nothing more urgent than the incoming class is ever dropped to make room.
        for cls in Priority:
            if cls < prio:
                assert after[cls.name] == before[cls.name]
        assert len(box) <= max_items
        assert box.bytes <= max_bytes
        if do_pop and (got := box.pop(now)) is not None:
            assert got.event.stale > now
        check_accounting(box)
        assert box.statistics().high_water <= max_items
    for got in drain(box, now):
        assert got.event.stale > now
    check_accounting(box)
    assert box.bytes == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([Priority.EMERGENCY, Priority.MESSAGE]), st.integers(0, 5)), max_size=60))
def test_fifo_within_urgent_classes(ops: list[tuple[Priority, int]]) -> None:
    box = Outbox()
    now = 0
    order: dict[Priority, list[Envelope]] = {Priority.EMERGENCY: [], Priority.MESSAGE: []}
    for i, (prio, dt) in enumerate(ops):
        now += dt
        order[prio].append(put(box, prio, f"m{i % 3}", now))
    got = drain(box, now)
    assert [e for e in got if e.priority is Priority.EMERGENCY] == order[Priority.EMERGENCY]
    assert [e for e in got if e.priority is Priority.MESSAGE] == order[Priority.MESSAGE]


def test_urgent_only_serves_emergencies_then_messages_and_leaves_positions() -> None:
    box = Outbox()
    box.put(envelope(Priority.POSITION, "p", tag=1), now_ms=0)
    box.put(envelope(Priority.MESSAGE, "m", tag=2), now_ms=1)
    later = DEFAULT_MAX_WAIT_MS[Priority.POSITION] + 10  # the position head is overdue by now
    head = box.peek(later)
    assert head is not None and head.event.uid == "p"  # aging puts it first for a normal pop
    box.put(envelope(Priority.EMERGENCY, "e", tag=3), now_ms=later)
    urgent = [box.pop(later, urgent_only=True) for _ in range(3)]
    assert [e.event.uid if e else None for e in urgent] == ["e", "m", None]
    assert len(box) == 1 and box.peek(later, urgent_only=True) is None
