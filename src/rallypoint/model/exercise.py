"""Exercise marking: how an event says it is simulated traffic of a scripted exercise.

A simulated event carries ``opex="e-<EXID>"`` (CoT's operation/exercise/simulation attribute) and
``<__rallypoint_exercise id="<EXID>" unit="..."/>`` in its detail (docs/exercises.md, "Control and
marking"). Either is enough to make an event exercise traffic; when both are present they must
name the same exercise. A replayed event carries ``opex="s-replay"``: simulation, not an exercise.
"""

from __future__ import annotations

import re

import msgspec

# The detail element of an exercise marker, and the type of the runner's inject marker events
# (stored in history, delivered to nobody).
EXERCISE_TAG = "__rallypoint_exercise"
EXERCISE_TYPE = "t-x-rp-exercise"
# ``opex`` of a replayed event (services.replay): simulated, and never an exercise of its own.
REPLAY_OPEX = "s-replay"
EXERCISE_OPEX_PREFIX = "e-"
_EXID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ExerciseMark(msgspec.Struct, frozen=True, gc=False):
    """``<__rallypoint_exercise id=... unit=... inject=... kind=.../>`` as sent (checked by the decoders)."""

    id: str | None = None
    unit: str | None = None
    inject: str | None = None
    kind: str | None = None


class BadExercise(ValueError):
    """The event's exercise marking is malformed or self-contradictory."""


def valid_exercise_id(value: str) -> bool:
    """True for letters, digits, ``-`` and ``_``, 1 to 64 characters."""
    return _EXID.fullmatch(value) is not None


def exercise_id(opex: str | None, mark: ExerciseMark | None) -> str | None:
    """The exercise an event belongs to, ``None`` for live traffic; :class:`BadExercise` if malformed.

    ``opex`` values other than ``e-...`` (operation ``o``, simulation ``s``, replay) name no exercise.
    """
    from_opex = None
    if opex is not None and opex.startswith(EXERCISE_OPEX_PREFIX):
        from_opex = opex[len(EXERCISE_OPEX_PREFIX):]
        if not valid_exercise_id(from_opex):
            raise BadExercise(f"opex {opex[:80]!r}: the exercise id must be 1-64 letters, digits, '-' or '_'")
    if mark is None:
        return from_opex
    if mark.id is None or not valid_exercise_id(mark.id):
        raise BadExercise(f"<{EXERCISE_TAG}> id {(mark.id or '')[:80]!r}: must be 1-64 letters, digits, '-' or '_'")
    if from_opex is not None and from_opex != mark.id:
        raise BadExercise(f"opex names exercise {from_opex!r} but <{EXERCISE_TAG}> names {mark.id!r}")
    return mark.id


# History filters (``HistoryQuery.exercise``) besides an exercise id; never accepted as exercise ids.
FILTER_ANY = "any"
FILTER_NONE = "none"
RESERVED_IDS = frozenset({FILTER_ANY, FILTER_NONE})


def exercise_filter(value: str | None) -> str:
    """A history filter: ``any`` (default), ``none`` (live traffic only) or one exercise id; ValueError if bad."""
    if value is None or value == "":
        return FILTER_ANY
    if value in RESERVED_IDS or valid_exercise_id(value):
        return value
    raise ValueError("exercise: any, none, or an exercise id (1-64 letters, digits, '-' or '_')")
