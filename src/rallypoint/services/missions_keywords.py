"""Mission keywords: replace or remove them in the store and the mirror, and tell the mission's audience."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import msgspec

from rallypoint.clock import Clock
from rallypoint.model.mission import Mission, Permission, Subscription
from rallypoint.services import missions_notify as notify
from rallypoint.services.missions_access import (
    MAX_KEYWORDS,
    Caller,
    InvalidMissionRequest,
    MissionNotFound,
    check_keyword,
    require,
)
from rallypoint.services.missions_post import MissionPost
from rallypoint.storage.base.missions import MissionRecords


class MissionKeywords:
    """Keywords of missions found by the :class:`MissionService` (which owns the mirror and its lock)."""

    def __init__(
        self, store: MissionRecords, post: MissionPost, clock: Clock, missions: dict[str, Mission],
        lock: asyncio.Lock, touched: Callable[[str], None],
    ) -> None:
        self._store = store
        self._post = post
        self._clock = clock
        self._missions = missions
        self._lock = lock
        self._touched = touched

    async def set(self, caller: Caller, mission: Mission, subs: dict[str, Subscription],
                  keywords: Iterable[object]) -> Mission:
        """Replace the mission's keywords (needs ``MISSION_WRITE``); an empty list clears them."""
        require(mission, subs, caller, Permission.WRITE)
        wanted = tuple(dict.fromkeys(check_keyword(k) for k in keywords))
        if len(wanted) > MAX_KEYWORDS:
            raise InvalidMissionRequest(f"at most {MAX_KEYWORDS} keywords")
        return await self._update(caller, mission, wanted)

    async def remove(self, caller: Caller, mission: Mission, subs: dict[str, Subscription], keyword: str) -> Mission:
        """Remove one keyword (needs ``MISSION_WRITE``); ``InvalidMissionRequest`` if it is not there."""
        require(mission, subs, caller, Permission.WRITE)
        if keyword not in mission.keywords:
            raise InvalidMissionRequest("the mission has no such keyword")
        return await self._update(caller, mission, tuple(k for k in mission.keywords if k != keyword))

    async def _update(self, caller: Caller, mission: Mission, keywords: tuple[str, ...]) -> Mission:
        async with self._lock:
            current = self._missions.get(mission.name)
            if current is None or current.guid != mission.guid or not await self._store.set_keywords(
                mission.guid, keywords
            ):
                raise MissionNotFound(mission.name)
            updated = msgspec.structs.replace(current, keywords=keywords)
            self._missions[mission.name] = updated
        self._touched(mission.name)
        # As TAK Server does, the mission's whole audience hears of it (it changes what lists show).
        event = notify.mission_notice(notify.CHANGED, "KEYWORD", updated, author_uid=caller.client_uid,
                                      now_ms=self._clock.now_ms())
        self._post.to_readers(updated, event)
        return updated
