"""What a mission store keeps: Data Sync missions, their contents, items, members and change log.

Semantics every backend shares (``tests/contract/test_mission_store.py`` pins them):

* Names are unique (case-sensitive); child rows (contents, items, subscriptions, invitations) go
  with their mission, the change log is kept by guid and outlives it.
* The mission types are those of ``model.mission``; groups are frozensets there.
"""

from __future__ import annotations

from typing import Protocol

from rallypoint.model.mission import (
    Invitation,
    Mission,
    MissionChange,
    MissionContent,
    MissionItem,
    Role,
    Subscription,
)


class MissionRecords(Protocol):
    """Mission rows."""

    async def create(self, mission: Mission, change: MissionChange) -> bool:
        """Insert a mission and its creation entry; False (nothing written) if the name is taken."""
        ...

    async def get(self, name: str) -> Mission | None:
        """The mission named ``name`` (case-sensitive)."""
        ...

    async def by_guid(self, guid: str) -> Mission | None:
        """The mission with this guid."""
        ...

    async def all(self) -> list[Mission]:
        """Every mission, by name."""
        ...

    async def set_keywords(self, guid: str, keywords: tuple[str, ...]) -> bool:
        """Replace a mission's keywords; False if the mission is gone."""
        ...

    async def delete(self, mission: Mission, change: MissionChange) -> bool:
        """Remove a mission with everything under it, logging ``change``; False if it was gone."""
        ...

    async def add_contents(self, guid: str, contents: list[MissionContent], creator_uid: str) -> list[MissionContent]:
        """Add data packages; returns those that were not in the mission yet (each logged as a change)."""
        ...

    async def remove_content(self, guid: str, change: MissionChange) -> bool:
        """Remove ``change.content_hash`` and log ``change``; False if it was not there."""
        ...

    async def contents(self, guid: str) -> list[MissionContent]:
        """The mission's data packages, oldest first."""
        ...

    async def put_item(self, guid: str, item: MissionItem, change: MissionChange | None) -> bool:
        """Record a uid (replacing its XML when the item carries some); True if the uid is new.

        ``change`` is logged only when the uid is new.
        """
        ...

    async def remove_item(self, guid: str, change: MissionChange) -> bool:
        """Remove ``change.content_uid`` and log ``change``; False if it was not there."""
        ...

    async def items(self, guid: str) -> list[MissionItem]:
        """The mission's uids, oldest first."""
        ...

    async def subscribe(self, guid: str, sub: Subscription) -> None:
        """Insert or replace the client's subscription (a new token replaces the old one)."""
        ...

    async def unsubscribe(self, guid: str, client_uid: str) -> bool:
        """Drop a subscription; False if there was none."""
        ...

    async def set_role(self, guid: str, client_uid: str, role: Role) -> bool:
        """Change a subscriber's role; False if the client is not subscribed."""
        ...

    async def subscriptions(self, guid: str | None = None) -> list[Subscription]:
        """Subscriptions of one mission, or of every mission when ``guid`` is None."""
        ...

    async def invite(self, guid: str, invitation: Invitation) -> None:
        """Record (or refresh) an invitation."""
        ...

    async def invitations(self, guid: str) -> list[Invitation]:
        """Invitations to one mission."""
        ...

    async def log_change(self, guid: str, change: MissionChange) -> None:
        """Append one change-log entry."""
        ...

    async def changes(self, guid: str, *, since_ms: int = 0, until_ms: int | None = None,
                      limit: int = 1000) -> list[MissionChange]:
        """Change-log entries with ``since_ms <= timestamp <= until_ms``, oldest first, at most ``limit``."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
