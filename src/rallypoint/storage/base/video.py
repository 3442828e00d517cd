"""What a video store keeps: registered video connections by uid (``services.video`` holds the rules)."""

from __future__ import annotations

from typing import Protocol

from rallypoint.model.video import VideoConnection


class VideoRecords(Protocol):
    """Video connection rows, one per uid."""

    async def put(self, connection: VideoConnection) -> None:
        """Insert ``connection`` or replace the one with its uid."""
        ...

    async def get(self, uid: str) -> VideoConnection | None:
        """The connection with this uid, or None."""
        ...

    async def all(self) -> list[VideoConnection]:
        """Every connection, by uid."""
        ...

    async def count(self) -> int:
        """How many connections are kept."""
        ...

    async def delete(self, uid: str) -> bool:
        """Remove one connection; False if there was none."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
