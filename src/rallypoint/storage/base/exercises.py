"""What an exercise store keeps: registered exercises (``model.exercise_control``) and their commands.

Every node reads and writes the same rows (``--storage postgresql://``). An exercise changes by
compare-and-set on ``version``, so of two writers at once exactly one wins and the other re-reads.
A command gets the next sequence number of its exercise atomically with the exercise's
``last_seq``: numbers are 1, 2, 3... without gaps or repeats whichever node adds them.
"""

from __future__ import annotations

from typing import Protocol

from rallypoint.model.exercise_control import Command, Exercise

MAX_COMMANDS_PAGE = 500


class ExerciseRecords(Protocol):
    """Exercise rows and their command log."""

    async def insert(self, exercise: Exercise) -> bool:
        """Store a new exercise; False (nothing written) when its id exists."""
        ...

    async def get(self, exercise_id: str) -> Exercise | None:
        """The exercise with this id, or None."""
        ...

    async def replace(self, exercise: Exercise, *, expected_version: int) -> bool:
        """Write ``exercise`` (its ``last_seq`` aside) over the row still at ``expected_version``; False otherwise."""
        ...

    async def all(self) -> list[Exercise]:
        """Every exercise, newest first."""
        ...

    async def add_command(self, exercise_id: str, command: Command) -> int | None:
        """Append ``command`` with the exercise's next sequence number (returned); None if there is no exercise."""
        ...

    async def commands(self, exercise_id: str, *, after: int, limit: int = MAX_COMMANDS_PAGE) -> list[Command]:
        """The exercise's commands with ``seq > after``, in order, at most ``limit``."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
