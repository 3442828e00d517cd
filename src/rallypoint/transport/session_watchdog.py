"""Whether a receiver has stopped keeping up: its socket refuses data, or its outbox stays full."""

from __future__ import annotations

from rallypoint.clock import Clock


class SlowReceiverWatch:
    """Times a session's back-pressure; the node's idle sweep and the outbox act on what it reports."""

    __slots__ = ("_clock", "_full_since", "_timeout_s", "paused_since")

    def __init__(self, clock: Clock, timeout_s: float) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        # Since when the socket has refused more data (the receiver stopped reading).
        self.paused_since: float | None = None
        # Since when the outbox has been full (the receiver takes less than it is sent).
        self._full_since: float | None = None

    def paused(self) -> None:
        if self.paused_since is None:
            self.paused_since = self._clock.monotonic()

    def resumed(self) -> None:
        self.paused_since = None

    def outbox_full(self, full: bool) -> bool:
        """Record the outbox state after a queueing; True once it has stayed full past the timeout."""
        if not full:
            return False
        now = self._clock.monotonic()
        if self._full_since is None:
            self._full_since = now
            return False
        return now - self._full_since > self._timeout_s

    def outbox_not_full(self) -> None:
        """The outbox drained below its bound: the receiver is keeping up again."""
        self._full_since = None
