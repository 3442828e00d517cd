"""The exercise clock: exercise seconds as a function of wall time, with pause, resume and speed.

Pure: every method takes the wall time (seconds, any monotonic origin) as an argument. Between two
changes the exercise time runs linearly, ``clock_s = base_s + (wall - since) * speed``, so the wall
time at which the exercise reaches a given second is known in advance (:meth:`wall_at`): that is
what the runner schedules sends against and measures its lag from.
"""

from __future__ import annotations

from enum import Enum

MIN_SPEED = 1.0
MAX_SPEED = 10.0


class ClockState(Enum):
    """Where the exercise stands (the control API's ``state``)."""

    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class ClockError(ValueError):
    """A clock change that makes no sense now (resume while running, speed out of range, ...)."""


def check_speed(speed: float) -> float:
    """``speed`` if within 1..10, else :class:`ClockError`."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ClockError(f"speed must be within {MIN_SPEED:g}..{MAX_SPEED:g} (got {speed:g})")
    return speed


class ExerciseClock:
    """Exercise time from wall time; starts READY at 0 s."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = check_speed(speed)
        self.state = ClockState.READY
        self._base_s = 0.0
        self._since = 0.0

    def now(self, wall: float) -> float:
        """Exercise seconds at wall time ``wall``."""
        if self.state is ClockState.RUNNING:
            return self._base_s + (wall - self._since) * self.speed
        return self._base_s

    def wall_at(self, clock_s: float) -> float | None:
        """The wall time at which the running clock reads ``clock_s`` (None unless running)."""
        if self.state is not ClockState.RUNNING:
            return None
        return self._since + (clock_s - self._base_s) / self.speed

    def start(self, wall: float) -> None:
        """READY → RUNNING."""
        if self.state is not ClockState.READY:
            raise ClockError(f"cannot start: the exercise is {self.state.value}")
        self._run(wall)

    def pause(self, wall: float) -> None:
        """RUNNING → PAUSED; the exercise time stands still."""
        if self.state is not ClockState.RUNNING:
            raise ClockError(f"cannot pause: the exercise is {self.state.value}")
        self._base_s = self.now(wall)
        self.state = ClockState.PAUSED

    def resume(self, wall: float) -> None:
        """PAUSED → RUNNING from where it stood."""
        if self.state is not ClockState.PAUSED:
            raise ClockError(f"cannot resume: the exercise is {self.state.value}")
        self._run(wall)

    def set_speed(self, wall: float, speed: float) -> None:
        """Change speed from now on (exercise time so far is kept)."""
        check_speed(speed)
        self._base_s = self.now(wall)
        self._since = wall
        self.speed = speed

    def stop(self, wall: float) -> None:
        """Any state → STOPPED, for good."""
        self._base_s = self.now(wall)
        self.state = ClockState.STOPPED

    def _run(self, wall: float) -> None:
        self._since = wall
        self.state = ClockState.RUNNING
