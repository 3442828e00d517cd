"""Which rows belong in a report: the one place that decides by exercise id.

The event store keeps each row's exercise (``StoredEvent.exercise``, from the event's ``opex`` or
``<__rallypoint_exercise>`` marking, None for live traffic). A report on exercise ``X`` keeps the
rows of ``X`` and live traffic (the people responding), and leaves out rows of other exercises.
The store's own filter (``HistoryQuery.exercise``) takes one exercise or live traffic, not both,
so the report reads every row of the window once and decides here.
"""

# mypy: disallow-untyped-defs, disallow-any-generics, warn-return-any

from __future__ import annotations


def in_scope(row_exercise: str | None, exercise: str | None) -> bool:
    """True if a row of ``row_exercise`` (None: live) belongs in a report on ``exercise`` (None: every one)."""
    return exercise is None or row_exercise is None or row_exercise == exercise
