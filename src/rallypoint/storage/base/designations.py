"""What a designation store keeps: designations by id, and their state changes made atomically.

The store only keeps; ``services.designations`` holds the rules (who may see, approve, reject).
A transition is conditional on the state the caller saw, so two approvers racing on two nodes
sharing one database end with exactly one approval (the other is told it came second).
"""

from __future__ import annotations

import builtins
from typing import Protocol

from rallypoint.model.designation import Designation, State


class DesignationRecords(Protocol):
    """Designation rows."""

    async def insert(self, designation: Designation) -> None:
        """Store a new designation (its id is new)."""
        ...

    async def get(self, designation_id: str) -> Designation | None:
        """The designation with this id, or None."""
        ...

    async def list(self, *, state: State | None = None, mission: str | None = None) -> list[Designation]:
        """Designations, oldest proposal first, optionally of one state and one mission."""
        ...

    async def list_json(self, *, state: State | None = None, mission: str | None = None) -> builtins.list[bytes]:
        """As :meth:`list`, each designation as its JSON encoding (what the API answers), not decoded."""
        ...

    async def transition(self, updated: Designation, *, expected: State) -> bool:
        """Replace the row of ``updated.id`` with ``updated`` if its state is still ``expected``.

        False (and nothing changed) when the designation is unknown or its state moved on.
        """
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
