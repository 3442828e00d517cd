"""Data Sync missions: create, subscribe, add and remove contents, invite, roles, keywords, change log.

Missions and subscriptions are mirrored in memory (few, small, read on the ingest path for
mission-addressed CoT); mutations go to the store first, then to the mirror, under one lock so
the two never disagree. Every change is told to the mission's connected subscribers as a
``t-x-m-*`` CoT (see :mod:`rallypoint.services.missions_notify`); addressed notices are also kept for
subscribers and invitees that are offline (see :mod:`rallypoint.services.missions_post`). The rules of
creating and joining a mission are in :mod:`rallypoint.services.missions_admit`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable

import msgspec

from rallypoint.clock import Clock
from rallypoint.model.mission import (
    ChangeType,
    CreateRequest,
    Invitation,
    InviteType,
    Mission,
    MissionChange,
    MissionContent,
    MissionDetails,
    Permission,
    Role,
    Subscription,
)
from rallypoint.routing.directory import Directory, Subscriber
from rallypoint.routing.envelope import Envelope
from rallypoint.security.passwords import hash_password, verify_password
from rallypoint.services import missions_notify as notify
from rallypoint.services.missions_access import (
    Caller,
    InvalidMissionRequest,
    MissionConflict,
    MissionForbidden,
    MissionNotFound,
    check_uid,
    effective_role,
    is_creator,
    own_subscription,
    require,
)
from rallypoint.services.missions_admit import check_create, joining_role, new_mission
from rallypoint.services.missions_contents import Describe, MissionContents, Snapshot
from rallypoint.services.missions_cot import ExerciseGate, MissionCot
from rallypoint.services.missions_invites import MissionInvites
from rallypoint.services.missions_keywords import MissionKeywords
from rallypoint.services.missions_post import MissionPost, NoticeKeeper, Publish
from rallypoint.storage.base.missions import MissionRecords

log = logging.getLogger(__name__)


class MissionService:
    """The mission rules over a :class:`MissionRecords` store, delivering notices through a :class:`Directory`."""

    def __init__(
        self,
        store: MissionRecords,
        directory: Directory,
        clock: Clock,
        *,
        snapshot: Snapshot | None = None,
        describe: Describe | None = None,
        hash_secret: Callable[[str], str] = hash_password,
        check_secret: Callable[[str, str], bool] = verify_password,
    ) -> None:
        self._store = store
        self._directory = directory
        self._clock = clock
        self._post = MissionPost(directory, clock)
        self._hash_secret = hash_secret
        self._check_secret = check_secret
        self._missions: dict[str, Mission] = {}
        self._subs: dict[str, dict[str, Subscription]] = {}
        self._loaded = False
        self._lock = asyncio.Lock()
        self._cot = MissionCot(store, directory, self._post, self._missions, self._subs, self._changed)
        self._invites = MissionInvites(store, directory, self._post, clock)
        self._keywords = MissionKeywords(store, self._post, clock, self._missions, self._lock, self._touched)
        self._contents = MissionContents(store, clock, self._changed, snapshot=snapshot, describe=describe)
        self._touch_listeners: list[Callable[[str], object]] = []

    def admit_exercises(self, gate: ExerciseGate) -> None:
        """Let exercise traffic join the missions ``gate`` allows (by default it joins none)."""
        self._cot.exercise_gate = gate

    def keep_offline(self, keeper: NoticeKeeper) -> None:
        """Keep addressed notices (changes, deletes, roles, invitations) for offline addressees."""
        self._post.keep_offline(keeper)

    def on_change(self, listener: Callable[[str], object]) -> None:
        """Call ``listener(name)`` once a mission or its subscriptions changed in the store and the mirror."""
        self._touch_listeners.append(listener)

    async def refresh(self, name: str) -> None:
        """Re-read mission ``name`` and its subscriptions from the store (another node changed them)."""
        async with self._lock:
            if not self._loaded:
                return  # the first use loads everything from the store
            mission = await self._store.get(name)
            if mission is None:
                self._missions.pop(name, None)
                self._subs.pop(name, None)
                return
            subs = await self._store.subscriptions(mission.guid)
            self._missions[name] = mission
            self._subs[name] = {sub.client_uid: sub for sub in subs}

    def _touched(self, name: str) -> None:
        for listener in self._touch_listeners:
            listener(name)

    @property
    def store(self) -> MissionRecords:
        """The backing store."""
        return self._store

    async def load(self) -> None:
        """Fill the in-memory mirror from the store (done once, on first use)."""
        async with self._lock:
            await self._load_locked()

    async def _load_locked(self) -> None:
        if self._loaded:
            return
        for mission in await self._store.all():
            self._missions[mission.name] = mission
            self._subs[mission.name] = {}
        for sub in await self._store.subscriptions():
            self._subs.setdefault(sub.mission, {})[sub.client_uid] = sub
        self._loaded = True

    @property
    def loaded(self) -> bool:
        """True once the mirror reflects the store."""
        return self._loaded

    # -- missions -----------------------------------------------------------------------------

    async def create(self, caller: Caller, req: CreateRequest) -> tuple[Mission, Subscription | None, bool]:
        """Create a mission owned by the caller; returns (mission, owner subscription, created).

        Creating a mission that already exists and that the caller owns answers it unchanged
        (``created`` False), as clients retry creation; anyone else gets ``MissionConflict``.
        """
        checked = check_create(caller, req)
        name = checked.name
        now = self._clock.now_ms()
        async with self._lock:
            await self._load_locked()
            existing = self._missions.get(name)
            if existing is not None:
                if caller.sees(existing) and is_creator(existing, caller):
                    return existing, own_subscription(self._subs.get(name, {}), caller), False
                raise MissionConflict("mission name is not available")
            mission = new_mission(caller, req, checked, now_ms=now, hash_secret=self._hash_secret)
            change = MissionChange(
                type=ChangeType.CREATE_MISSION, mission=name, creator_uid=caller.client_uid, timestamp=now
            )
            if not await self._store.create(mission, change):
                raise MissionConflict("mission name is not available")
            self._missions[name] = mission
            self._subs[name] = {}
            sub = None
            if caller.client_uid:
                sub = await self._subscribe_locked(mission, caller, Role.OWNER, now)
        self._touched(name)
        log.info("mission created", extra={"mission": name, "principal": caller.principal})
        event = notify.mission_notice(
            notify.CREATED, "CREATE", mission, author_uid=caller.client_uid, now_ms=now, changes=[change]
        )
        self._post.to_readers(mission, event)
        return mission, sub, True

    async def visible(self, caller: Caller) -> list[Mission]:
        """Every mission the caller can see, by name."""
        await self._ensure_loaded()
        return [m for _, m in sorted(self._missions.items()) if caller.sees(m)]

    async def find(self, caller: Caller, name: str) -> Mission:
        """The mission by name if the caller can see it, else ``MissionNotFound``."""
        await self._ensure_loaded()
        mission = self._missions.get(name)
        if mission is None or not caller.sees(mission):
            raise MissionNotFound(name)
        return mission

    async def find_guid(self, caller: Caller, guid: str) -> Mission:
        """The mission by guid if the caller can see it, else ``MissionNotFound``."""
        await self._ensure_loaded()
        for mission in self._missions.values():
            if mission.guid == guid and caller.sees(mission):
                return mission
        raise MissionNotFound(guid)

    async def details(self, caller: Caller, mission: Mission) -> MissionDetails:
        """Contents, uids and the caller's role, for a mission found with :meth:`find`."""
        role = require(mission, self._subs.get(mission.name, {}), caller, Permission.READ)
        contents = await self._store.contents(mission.guid)
        items = await self._store.items(mission.guid)
        return MissionDetails(mission=mission, contents=contents, items=items, role=role)

    def role_of(self, caller: Caller, mission: Mission) -> Role:
        """The role the caller acts with in ``mission``."""
        return effective_role(mission, self._subs.get(mission.name, {}), caller)

    async def delete(self, caller: Caller, name: str) -> Mission:
        """Delete a mission (owner only) and tell its subscribers."""
        mission = await self.find(caller, name)
        require(mission, self._subs.get(name, {}), caller, Permission.DELETE)
        now = self._clock.now_ms()
        change = MissionChange(
            type=ChangeType.DELETE_MISSION, mission=name, creator_uid=caller.client_uid, timestamp=now
        )
        async with self._lock:
            if not _same(self._missions.get(name), mission) or not await self._store.delete(mission, change):
                raise MissionNotFound(name)
            self._missions.pop(name, None)
            subs = self._subs.pop(name, {})
        self._touched(name)
        log.info("mission deleted", extra={"mission": name, "principal": caller.principal})
        event = notify.mission_notice(
            notify.DELETED, "DELETE", mission, author_uid=caller.client_uid, now_ms=now, changes=[change]
        )
        self._post.to_subscribers(subs.values(), mission, event)
        return mission

    # -- subscriptions ------------------------------------------------------------------------

    async def subscribe(self, caller: Caller, name: str, password: str | None = None) -> Subscription:
        """Subscribe the caller's client uid; the role comes from ownership, invitation or the default."""
        mission = await self.find(caller, name)
        if not caller.client_uid:
            raise InvalidMissionRequest("uid is required")
        check_uid(caller.client_uid)
        invited = await self._invites.invited_role(mission, caller)
        async with self._lock:
            if not _same(self._missions.get(name), mission):
                raise MissionNotFound(name)
            subs = self._subs.setdefault(name, {})
            current = subs.get(caller.client_uid)
            if current is not None and current.principal == caller.principal:
                return current
            # A subscription made under this uid by another principal stands unless the caller
            # proves the uid is its own; then the impostor's subscription is replaced.
            if current is not None and not caller.uid_held:
                raise MissionForbidden("this client uid is subscribed by someone else")
            role = joining_role(mission, caller, invited, password, self._check_secret)
            sub = await self._subscribe_locked(mission, caller, role, self._clock.now_ms())
        self._touched(name)
        return sub

    async def _subscribe_locked(self, mission: Mission, caller: Caller, role: Role, now: int) -> Subscription:
        sub = Subscription(
            mission=mission.name,
            client_uid=caller.client_uid,
            principal=caller.principal,
            token=secrets.token_urlsafe(16),
            role=role,
            create_time=now,
        )
        await self._store.subscribe(mission.guid, sub)
        self._subs.setdefault(mission.name, {})[sub.client_uid] = sub
        return sub

    async def unsubscribe(self, caller: Caller, name: str) -> bool:
        """Drop the caller's own subscription; False if it had none."""
        mission = await self.find(caller, name)
        async with self._lock:
            sub = own_subscription(self._subs.get(name, {}), caller)
            if sub is None:
                return False
            await self._store.unsubscribe(mission.guid, sub.client_uid)
            self._subs.get(name, {}).pop(sub.client_uid, None)
        self._touched(name)
        return True

    async def subscriptions(self, caller: Caller, name: str) -> list[Subscription]:
        """A visible mission's subscriptions (tokens are the caller's business to hide)."""
        mission = await self.find(caller, name)
        require(mission, self._subs.get(name, {}), caller, Permission.READ)
        return list(self._subs.get(name, {}).values())

    def subscription_of(self, caller: Caller, mission: Mission) -> Subscription | None:
        """The caller's own subscription to ``mission``."""
        return own_subscription(self._subs.get(mission.name, {}), caller)

    async def set_role(self, caller: Caller, name: str, client_uid: str, role: Role) -> Subscription:
        """Change a subscriber's role (needs ``MISSION_SET_ROLE``) and tell that client."""
        mission = await self.find(caller, name)
        require(mission, self._subs.get(name, {}), caller, Permission.SET_ROLE)
        async with self._lock:
            current = self._subs.get(name, {}).get(client_uid)
            if current is None or not await self._store.set_role(mission.guid, client_uid, role):
                raise MissionNotFound(f"{client_uid} is not subscribed")
            updated = msgspec.structs.replace(current, role=role)
            self._subs[name][client_uid] = updated
        self._touched(name)
        event = notify.mission_notice(
            notify.ROLE_CHANGED, "ROLE", mission, author_uid=caller.client_uid, now_ms=self._clock.now_ms(), role=role
        )
        self._post.to_subscribers([updated], mission, event)
        return updated

    # -- invitations --------------------------------------------------------------------------

    async def invite(
        self, caller: Caller, name: str, kind: InviteType, invitee: str, role: Role | None = None
    ) -> Invitation:
        """Invite a client uid, callsign or group; connected invitees that can see the mission get ``t-x-m-i``."""
        mission = await self.find(caller, name)
        return await self._invites.invite(caller, mission, self._subs.get(name, {}), kind, invitee, role)

    # -- contents -----------------------------------------------------------------------------

    async def add(self, caller: Caller, name: str, hashes: Iterable[str], uids: Iterable[str]) -> list[MissionChange]:
        """Add data packages (by hash, each one the caller can read) and CoT uids; the changes made."""
        mission = await self.find(caller, name)
        require(mission, self._subs.get(name, {}), caller, Permission.WRITE)
        return await self._contents.add(caller, mission, hashes, uids)

    async def remove(
        self, caller: Caller, name: str, *, content_hash: str | None = None, uid: str | None = None
    ) -> list[MissionChange]:
        """Remove a data package and/or a uid; returns the changes made."""
        mission = await self.find(caller, name)
        require(mission, self._subs.get(name, {}), caller, Permission.WRITE)
        return await self._contents.remove(caller, mission, content_hash=content_hash, uid=uid)

    async def changes(
        self, caller: Caller, mission: Mission, *, since_ms: int = 0, until_ms: int | None = None
    ) -> list[MissionChange]:
        """The change log of a mission found with :meth:`find`."""
        require(mission, self._subs.get(mission.name, {}), caller, Permission.READ)
        return await self._store.changes(mission.guid, since_ms=since_ms, until_ms=until_ms)

    # -- keywords -----------------------------------------------------------------------------

    async def set_keywords(self, caller: Caller, name: str, keywords: Iterable[object]) -> Mission:
        """Replace the mission's keywords (needs ``MISSION_WRITE``); an empty list clears them."""
        mission = await self.find(caller, name)
        return await self._keywords.set(caller, mission, self._subs.get(name, {}), keywords)

    async def remove_keyword(self, caller: Caller, name: str, keyword: str) -> Mission:
        """Remove one keyword (needs ``MISSION_WRITE``); ``InvalidMissionRequest`` if it is not there."""
        mission = await self.find(caller, name)
        return await self._keywords.remove(caller, mission, self._subs.get(name, {}), keyword)

    # -- mission-addressed CoT ----------------------------------------------------------------

    def route_cot(self, envelope: Envelope) -> list[str]:
        """See :meth:`MissionCot.route_cot`: names of the missions the CoT is written to."""
        return self._cot.route_cot(envelope)

    def mission_receivers(self, envelope: Envelope, name: str) -> list[Subscriber]:
        """See :meth:`MissionCot.receivers`: the dispatcher's resolver of mission addresses."""
        return self._cot.receivers(envelope, name)

    def deliver_through(self, publish: Publish) -> None:
        """Publish notices with ``publish`` (the node's bus, for delivery only) instead of this node alone."""
        self._post.deliver_through(publish)

    async def record_cot(self, name: str, envelope: Envelope) -> bool:
        """See :meth:`MissionCot.record_cot`: True when the uid is new in the mission."""
        return await self._cot.record_cot(name, envelope)

    def _changed(
        self, mission: Mission, author: str, changes: list[MissionChange], contents: dict[str, MissionContent]
    ) -> None:
        if changes:
            self._post.changed(mission, self._subs.get(mission.name, {}).values(), author, changes, contents)

    async def _ensure_loaded(self) -> None:
        if not self._loaded:
            await self.load()


def _same(current: Mission | None, found: Mission) -> bool:
    """True while ``found`` (looked up before taking the lock) is still the mission of that name."""
    return current is not None and current.guid == found.guid
