"""Services of the web layer that the node builds before any HTTP feature (``WebContext`` is frozen)."""

from __future__ import annotations

from rallypoint.clock import Clock
from rallypoint.model.mission import MissionContent
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.services.datapackages import DataPackageService
from rallypoint.services.missions import MissionService
from rallypoint.services.presence import Presence
from rallypoint.storage.factory import Stores


def package_service(stores: Stores, clock: Clock) -> DataPackageService:
    """Data packages over the node's package and blob stores (the sync feature closes it)."""
    return DataPackageService(stores.blobs(), stores.packages(), clock)


def mission_service(
    stores: Stores, directory: Directory, clock: Clock, presence: Presence, packages: DataPackageService | None
) -> MissionService:
    """Missions over the node's mission store (the Mission API feature closes it).

    Mission items are snapshots of the picture; mission contents name data packages.
    """

    def snapshot(uid: str) -> Envelope | None:
        return presence.sa.get(uid) or presence.items.get(uid)

    async def describe(digest: str, read_groups: frozenset[str]) -> MissionContent | None:
        # Mission contents point at data packages the caller can download (same rule as /sync/content).
        if packages is None:
            return None
        record = await packages.find(digest.lower(), read_groups)
        if record is None:
            return None
        return MissionContent(
            hash=record.hash, creator_uid=record.creator_uid or "", timestamp=record.submitted_ms, name=record.name,
            size=record.size, mime_type=record.mime, submitter=record.submitter, keywords=record.keywords,
        )

    return MissionService(stores.missions(), directory, clock, snapshot=snapshot, describe=describe)
