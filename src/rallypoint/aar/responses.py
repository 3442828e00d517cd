"""Which response answers which inject: the first acknowledgement, approval or cancel after it.

Kept apart from the streaming pass: by the time injects are matched every row and audit entry of
the window has been seen, so a response stored before its inject's marker (the runner creates a task,
then records the marker) is still found.
"""

# mypy: disallow-untyped-defs, disallow-any-generics, warn-return-any

from __future__ import annotations

from collections import defaultdict

import msgspec

from rallypoint.aar.model import Response

# An API-driven inject whose marker names nothing it created is paired with the closest unclaimed
# task or designation created this close to it.
PAIRING_WINDOW_MS = 60_000
TASK_ANSWERS = ("acknowledged", "in_progress", "done", "failed")
DESIGNATION_ANSWERS = ("approved", "rejected")


class Seen(msgspec.Struct):
    """When something first reached a state, and who said so."""

    at_ms: int
    by: str
    source: str


class Evidence:
    """Everything the streaming pass keeps for matching (small: one entry per task, designation, alert)."""

    def __init__(self) -> None:
        # task id -> state -> first time it was recorded in that state.
        self.tasks: dict[str, dict[str, Seen]] = defaultdict(dict)
        self.designations: dict[str, dict[str, Seen]] = defaultdict(dict)
        # emergency uid -> acknowledgements and cancels (not themselves injects), in time order.
        self.emergency_answers: dict[str, list[tuple[int, Response]]] = defaultdict(list)

    def task(self, task_id: str, state: str, seen: Seen) -> None:
        """A task was recorded in ``state``."""
        states = self.tasks[task_id]
        current = states.get(state)
        if current is None or seen.at_ms < current.at_ms:
            states[state] = seen

    def designation(self, designation_id: str, state: str, seen: Seen) -> None:
        """A designation was recorded in ``state``."""
        states = self.designations[designation_id]
        current = states.get(state)
        if current is None or seen.at_ms < current.at_ms:
            states[state] = seen

    def emergency(self, uid: str, response: Response) -> None:
        """An emergency was acknowledged or cancelled."""
        self.emergency_answers[uid].append((response.at_ms, response))


def first_answer(states: dict[str, Seen], answers: tuple[str, ...], noun: str) -> Response | None:
    """The earliest of ``answers`` among the recorded states."""
    found = [(seen.at_ms, state, seen) for state, seen in states.items() if state in answers]
    if not found:
        return None
    at_ms, state, seen = min(found, key=lambda item: item[0])
    return Response(f"{noun} {state.replace('_', ' ')}", at_ms, seen.by, seen.source)


def emergency_answer(evidence: Evidence, uid: str, after_ms: int) -> Response | None:
    """The first acknowledgement or cancel of the emergency ``uid`` at or after ``after_ms``."""
    candidates = [resp for at, resp in evidence.emergency_answers.get(uid, ()) if at >= after_ms]
    return min(candidates, key=lambda r: r.at_ms) if candidates else None


def created_at(states: dict[str, Seen], created: str) -> int | None:
    """When the item was first recorded in its initial state (assigned, proposed)."""
    seen = states.get(created)
    return None if seen is None else seen.at_ms


def pair(at_ms: int, candidates: dict[str, dict[str, Seen]], created: str, claimed: set[str]) -> str:
    """The unclaimed item created closest to ``at_ms`` within the pairing window ("" if none)."""
    best, best_gap = "", PAIRING_WINDOW_MS + 1
    for item_id, states in candidates.items():
        made = created_at(states, created)
        if item_id in claimed or made is None:
            continue
        gap = abs(made - at_ms)
        if gap < best_gap or (gap == best_gap and item_id < best):
            best, best_gap = item_id, gap
    return best
