"""What a plan store keeps: the versions of each mission's operation plan.

Plans live beside their missions (same database, the missions migration family): versions are
keyed by the mission's guid and go with the mission when it is deleted. Semantics every backend
shares (``tests/contract/test_plan_store.py`` pins them):

* Versions of a mission are numbered 1, 2, ... by the caller; :meth:`PlanRecords.append` refuses a
  number already taken (two writers raced: the loser reads the latest and tries again) and a
  mission that does not exist.
* A version reads back exactly as written, whole plan included.
"""

from __future__ import annotations

from typing import Protocol

from rallypoint.model.plan import PlanVersion, VersionInfo


class PlanRecords(Protocol):
    """Plan versions, per mission guid."""

    async def append(self, version: PlanVersion) -> bool:
        """Store a new version; False (nothing written) if its number is taken or the mission is gone."""
        ...

    async def latest(self, mission_guid: str) -> PlanVersion | None:
        """The newest version of a mission's plan, None if it has none."""
        ...

    async def get(self, mission_guid: str, version: int) -> PlanVersion | None:
        """One version, None if there is no such version."""
        ...

    async def versions(self, mission_guid: str, *, limit: int = 1000) -> list[VersionInfo]:
        """The newest ``limit`` versions without their plans, oldest first."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
