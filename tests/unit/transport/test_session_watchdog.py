"""The slow-receiver watchdog: a full outbox must stay full past the timeout before the session goes."""

from __future__ import annotations

from rallypoint.clock import ManualClock
from rallypoint.transport.session_watchdog import SlowReceiverWatch


def test_a_full_outbox_is_too_slow_only_after_the_timeout() -> None:
    clock = ManualClock()
    watch = SlowReceiverWatch(clock, timeout_s=30.0)
    assert not watch.outbox_full(True)
    clock.advance(30.0)
    assert not watch.outbox_full(True)
    clock.advance(0.5)
    assert watch.outbox_full(True)


def test_draining_below_the_bound_restarts_the_clock() -> None:
    clock = ManualClock()
    watch = SlowReceiverWatch(clock, timeout_s=30.0)
    watch.outbox_full(True)
    clock.advance(29.0)
    watch.outbox_not_full()
    clock.advance(29.0)
    assert not watch.outbox_full(True)
    clock.advance(29.0)
    assert not watch.outbox_full(True)


def test_paused_since_is_the_first_pause_until_resumed() -> None:
    clock = ManualClock()
    watch = SlowReceiverWatch(clock, timeout_s=30.0)
    clock.advance(5.0)
    watch.paused()
    first = watch.paused_since
    clock.advance(5.0)
    watch.paused()
    assert watch.paused_since == first == 5.0
    watch.resumed()
    assert watch.paused_since is None
