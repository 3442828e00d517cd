"""Link budget and thinning: the byte bound holds, urgent traffic is deferred but never skipped."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rallypoint.delivery.budget import Decision, HeldReports, LinkBudget, ThinningPolicy
from rallypoint.model.cot_type import Priority
from tests.unit.delivery.support import envelope

URGENT = (Priority.EMERGENCY, Priority.MESSAGE)


def test_bucket_starts_full_and_refills_at_rate() -> None:
    bucket = LinkBudget(100.0, 500, now=0.0)
    assert bucket.try_spend(500, 0.0)
    assert not bucket.try_spend(1, 0.0)
    assert bucket.wait_s(50, 0.0) == pytest.approx(0.5)
    assert bucket.try_spend(50, 0.5)
    assert bucket.available(100.0) == 500  # capped at the burst
    assert bucket.wait_s(501, 100.0) == math.inf


def test_bucket_keeps_reserve() -> None:
    bucket = LinkBudget(10.0, 100, now=0.0)
    assert not bucket.try_spend(80, 0.0, keep=25)
    assert bucket.try_spend(75, 0.0, keep=25)


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        LinkBudget(0.0, 10, now=0.0)
    with pytest.raises(ValueError):
        ThinningPolicy(LinkBudget(1.0, 10, now=0.0), reserve_bytes=10)
    policy = ThinningPolicy(LinkBudget(1.0, 10, now=0.0))
    with pytest.raises(ValueError):
        policy.decide(envelope(Priority.MESSAGE, "m"), 11, 0.0)


def test_positions_leave_a_reserve_for_urgent_traffic() -> None:
    policy = ThinningPolicy(LinkBudget(10.0, 1000, now=0.0), reserve_bytes=300)
    assert policy.decide(envelope(Priority.POSITION, "p1"), 600, 0.0) is Decision.SEND
    assert policy.decide(envelope(Priority.POSITION, "p2"), 200, 0.0) is Decision.DEFER
    assert policy.decide(envelope(Priority.EMERGENCY, "e"), 300, 0.0) is Decision.SEND


def test_urgent_is_deferred_then_sent_once_the_budget_allows() -> None:
    policy = ThinningPolicy(LinkBudget(100.0, 1000, now=0.0))
    msg = envelope(Priority.MESSAGE, "m")
    assert policy.decide(msg, 1000, 0.0) is Decision.SEND
    assert policy.decide(msg, 400, 1.0) is Decision.DEFER
    wait = policy.retry_in(msg, 400, 1.0)
    assert wait == pytest.approx(3.0)
    assert policy.decide(msg, 400, 1.0 + wait) is Decision.SEND


def test_interval_grows_under_pressure_and_shrinks_after() -> None:
    policy = ThinningPolicy(LinkBudget(100.0, 400, now=0.0), reserve_bytes=0, min_interval_s=1.0, max_interval_s=8.0)
    now = 0.0
    # 20 uids at 1 Hz x 100 bytes = 2000 B/s offered on a 100 B/s link.
    for _ in range(30):
        for i in range(20):
            policy.decide(envelope(Priority.POSITION, f"u{i}"), 100, now)
        now += 1.0
    assert policy.interval_s == 8.0
    assert policy.skipped > 0
    # Silence (nothing offered) is no pressure: the interval halves back down to zero.
    for _ in range(6):
        policy.decide(envelope(Priority.MESSAGE, "m"), 1, now)
        now += 1.0
    assert policy.interval_s == 0.0


def test_thinned_uid_is_skipped_but_other_uids_are_not() -> None:
    # A long step keeps the interval where it is set for the whole test.
    policy = ThinningPolicy(LinkBudget(1000.0, 10_000, now=0.0), reserve_bytes=0, step_s=100.0)
    policy.interval_s = 5.0  # as if the link had been over budget
    assert policy.decide(envelope(Priority.POSITION, "a"), 10, 0.0) is Decision.SEND
    assert policy.decide(envelope(Priority.POSITION, "a"), 10, 0.5) is Decision.SKIP
    assert policy.decide(envelope(Priority.POSITION, "b"), 10, 0.5) is Decision.SEND
    # Other groups' positions are thinned twice as hard as the receiver's own group.
    assert policy.decide(envelope(Priority.POSITION, "c"), 10, 0.5, priority=Priority.OTHER_POSITION) is Decision.SEND
    assert policy.decide(envelope(Priority.POSITION, "c"), 10, 8.0, priority=Priority.OTHER_POSITION) is Decision.SKIP


STEPS = st.lists(
    st.tuples(
        st.floats(0.0, 2.0, allow_nan=False),  # time step, seconds
        st.integers(1, 2000),  # size
        st.sampled_from(list(Priority)),
        st.sampled_from(["a", "b", "c", "d"]),
    ),
    max_size=200,
)


@settings(max_examples=400, deadline=None)
@given(st.floats(10.0, 5000.0), st.integers(2000, 20_000), st.floats(0.0, 100.0), STEPS)
def test_sent_bytes_never_exceed_burst_plus_rate(
    rate: float, burst: int, start: float, steps: list[tuple[float, int, Priority, str]]
) -> None:
    policy = ThinningPolicy(LinkBudget(rate, burst, now=start), min_interval_s=0.5, max_interval_s=4.0)
    now = start
    sent = 0
    for dt, size, prio, uid in steps:
        now += dt
        decision = policy.decide(envelope(prio, uid), size, now, priority=prio)
        if decision is Decision.SEND:
            sent += size
        if prio in URGENT:
            assert decision is not Decision.SKIP
        assert sent <= burst + rate * (now - start) + 1e-6
    assert sent == policy.sent_bytes


@settings(max_examples=200, deadline=None)
@given(st.floats(10.0, 5000.0), st.integers(2000, 20_000), STEPS)
def test_deferred_urgent_envelope_is_sent_after_retry_in(
    rate: float, burst: int, steps: list[tuple[float, int, Priority, str]]
) -> None:
    policy = ThinningPolicy(LinkBudget(rate, burst, now=0.0))
    now = 0.0
    for dt, size, prio, uid in steps:
        now += dt
        env = envelope(prio, uid)
        if policy.decide(env, size, now, priority=prio) is Decision.DEFER and prio in URGENT:
            later = now + policy.retry_in(env, size, now, priority=prio) + 1e-9
            assert policy.decide(env, size, later, priority=prio) is Decision.SEND
            now = later


def _thinning_policy() -> ThinningPolicy:
    """A policy whose interval has grown to 1 s (one step under pressure), 'a' just sent at t=1."""
    policy = ThinningPolicy(LinkBudget(1_000, 4_000, 0.0), reserve_bytes=1_000)
    policy.decide(envelope(Priority.POSITION, "a"), 2_900, 0.0)  # sent: 100 bytes left, under the reserve
    assert policy.decide(envelope(Priority.POSITION, "b"), 1_000, 0.5) is Decision.DEFER  # pressure
    assert policy.decide(envelope(Priority.POSITION, "a"), 100, 1.0) is Decision.SEND  # interval is now 1 s
    assert policy.interval_s == 1.0
    return policy


def test_held_reports_keep_the_latest_per_uid_and_release_when_thinning_allows() -> None:
    policy = _thinning_policy()
    first, latest = envelope(Priority.POSITION, "a", tag=1), envelope(Priority.POSITION, "a", tag=2)
    assert policy.decide(latest, 100, 1.2) is Decision.SKIP
    held = HeldReports()
    held.hold(first, Priority.POSITION)
    held.hold(latest, Priority.POSITION)  # one entry per uid: the newer report replaces the older
    assert len(held) == 1
    assert held.due_in(policy, 1.2) == pytest.approx(0.8)  # 'a' was sent at 1.0, interval 1 s
    assert held.release(policy, 1.5) == []
    assert held.release(policy, 2.0) == [latest]
    assert len(held) == 0 and held.due_in(policy, 2.0) is None


def test_held_reports_wait_longer_for_other_groups_and_are_bounded() -> None:
    policy = _thinning_policy()
    held = HeldReports(max_items=2)
    held.hold(envelope(Priority.POSITION, "a"), Priority.OTHER_POSITION)  # twice the interval
    assert held.due_in(policy, 1.0) == pytest.approx(2.0)
    held.hold(envelope(Priority.POSITION, "b"), Priority.POSITION)
    held.hold(envelope(Priority.POSITION, "c"), Priority.POSITION)
    assert len(held) == 2 and held.dropped == 1  # the oldest held ('a') made room
    held.discard("b")
    assert [e.event.uid for e in held.release(policy, 1.0)] == ["c"]  # never sent: due at once


def test_control_frames_may_use_the_whole_bucket_and_are_counted() -> None:
    policy = ThinningPolicy(LinkBudget(1_000, 4_000, 0.0), reserve_bytes=1_000)
    assert policy.spend_urgent(3_500, 0.0)  # into the reserve, like urgent traffic
    assert not policy.spend_urgent(600, 0.0)
    assert policy.sent_bytes == 3_500 and policy.deferred == 1
