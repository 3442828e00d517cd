"""What a mission holds: data packages (by SHA-256) and CoT uids, added and removed over HTTP.

The :class:`MissionService` finds the mission and checks the caller's role; this module checks
what is being added and records it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import msgspec

from rallypoint.clock import Clock
from rallypoint.model.mission import ChangeType, Mission, MissionChange, MissionContent, MissionItem
from rallypoint.routing.envelope import Envelope
from rallypoint.services.missions_access import Caller, ContentNotFound, InvalidMissionRequest, check_hash, check_uid
from rallypoint.services.missions_cot import Changed, item_of
from rallypoint.storage.base.missions import MissionRecords

# Looks up the latest CoT of a uid (the live picture), for snapshots of uids added over HTTP.
Snapshot = Callable[[str], Envelope | None]
# Looks up a stored data package by SHA-256 for a caller reading these groups, as mission content the
# way its upload described it (``creator_uid`` "" when the upload named none); None when the package
# is not stored or the caller may not read it.
Describe = Callable[[str, frozenset[str]], Awaitable[MissionContent | None]]


class MissionContents:
    """Adds and removes the contents of missions the caller may already write."""

    def __init__(self, store: MissionRecords, clock: Clock, changed: Changed, *,
                 snapshot: Snapshot | None, describe: Describe | None) -> None:
        self._store = store
        self._clock = clock
        self._changed = changed
        self._snapshot = snapshot
        self._describe = describe

    async def add(self, caller: Caller, mission: Mission, hashes: Iterable[str],
                  uids: Iterable[str]) -> list[MissionChange]:
        """Add data packages and CoT uids; returns the changes made (new entries only).

        All or nothing for packages: a hash the caller cannot read (or that is not stored) refuses
        the whole request with ``ContentNotFound`` before anything is written.
        """
        wanted_hashes = list(dict.fromkeys(check_hash(h) for h in hashes))
        wanted_uids = list(dict.fromkeys(check_uid(u) for u in uids))
        now = self._clock.now_ms()
        contents = [await self._content(h, caller, now) for h in wanted_hashes]
        added = await self._store.add_contents(mission.guid, contents, caller.client_uid)
        # A request that names no uid of its own is credited to the uid the package's upload named
        # (as TAK Server's change records read), never left empty when one is known.
        changes = [
            MissionChange(type=ChangeType.ADD_CONTENT, mission=mission.name,
                          creator_uid=caller.client_uid or c.creator_uid, timestamp=c.timestamp, content_hash=c.hash)
            for c in added
        ]
        for uid in wanted_uids:
            change = MissionChange(type=ChangeType.ADD_CONTENT, mission=mission.name, creator_uid=caller.client_uid,
                                   timestamp=now, content_uid=uid)
            if await self._store.put_item(mission.guid, self._item(uid, caller, now), change):
                changes.append(change)
        author = caller.client_uid or next((c.creator_uid for c in changes if c.creator_uid), "")
        self._changed(mission, author, changes, {c.hash: c for c in added})
        return changes

    async def remove(self, caller: Caller, mission: Mission, *, content_hash: str | None,
                     uid: str | None) -> list[MissionChange]:
        """Remove a data package and/or a uid; returns the changes made."""
        if content_hash is None and uid is None:
            raise InvalidMissionRequest("hash or uid is required")
        now = self._clock.now_ms()
        changes: list[MissionChange] = []
        if content_hash is not None:
            change = MissionChange(type=ChangeType.REMOVE_CONTENT, mission=mission.name,
                                   creator_uid=caller.client_uid, timestamp=now, content_hash=check_hash(content_hash))
            if await self._store.remove_content(mission.guid, change):
                changes.append(change)
        if uid is not None:
            change = MissionChange(type=ChangeType.REMOVE_CONTENT, mission=mission.name,
                                   creator_uid=caller.client_uid, timestamp=now, content_uid=check_uid(uid))
            if await self._store.remove_item(mission.guid, change):
                changes.append(change)
        self._changed(mission, caller.client_uid, changes, {})
        return changes

    async def _content(self, content_hash: str, caller: Caller, now: int) -> MissionContent:
        # Only packages the caller could download itself are added: copying another group's
        # package metadata into the mission would disclose it, and a made-up hash points nowhere.
        meta = await self._describe(content_hash, caller.read_groups) if self._describe is not None else None
        if meta is None:
            raise ContentNotFound(f"no data package {content_hash}")
        # The package's creator is the device its upload named; the caller only when it named none.
        return msgspec.structs.replace(meta, hash=content_hash, creator_uid=meta.creator_uid or caller.client_uid,
                                       timestamp=now, submitter=meta.submitter or (caller.principal or ""))

    def _item(self, uid: str, caller: Caller, now: int) -> MissionItem:
        found = self._snapshot(uid) if self._snapshot is not None else None
        # Only a CoT the caller could read itself is copied into the mission.
        if found is None or caller.read_groups.isdisjoint(found.origin.groups):
            return MissionItem(uid=uid, creator_uid=caller.client_uid, timestamp=now)
        return item_of(found, caller.client_uid, now)
