"""Operation plans inside missions: read, change (with a reason), list versions, diff, revert, publish.

The rules are the mission's: reading a plan needs ``MISSION_READ`` in a mission the caller can
see, changing it needs ``MISSION_WRITE`` (see :class:`MissionService`). Every change stores a new
whole version (author, time, reason) in the plan store, which every node shares; a version number
taken by a concurrent writer (another node) makes the change retry on top of the newer version,
so no change is lost and none is applied twice. Nothing is mirrored in memory.

After each change the mission's subscribers get the map items that were added or changed as CoT
and a ``t-x-d-d`` for each drawing that went away, through ``Ingest.accept`` like every other
producer (addressed to the subscribers' uids, so a subscriber that is offline gets them from its
mailbox on reconnect). Airdrops are computed here, in a worker thread, whenever their request
changes: a result sent by a client is never trusted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import msgspec

from rallypoint.clock import Clock
from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.model.mission import Mission, Permission
from rallypoint.model.plan import (
    AirdropItem,
    ItemKind,
    Plan,
    PlanDiff,
    PlanItem,
    PlanPatch,
    PlanVersion,
    VersionInfo,
    apply_patch,
    items_of,
)
from rallypoint.protocol.limits import Limits
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.services.airdrop import PlanError
from rallypoint.services.airdrop import plan as plan_airdrop
from rallypoint.services.datapackages import DataPackageService, Upload, sanitize_filename
from rallypoint.services.missions import MissionService
from rallypoint.services.missions_access import (
    Caller,
    MissionConflict,
    MissionError,
    MissionForbidden,
    MissionNotFound,
)
from rallypoint.services.plans_cot import delete_event, drawn_uids, item_events
from rallypoint.services.plans_diff import diff_plans
from rallypoint.services.plans_package import to_package
from rallypoint.services.plans_validate import PlanInvalid, check_plan, check_reason
from rallypoint.storage.base.plans import PlanRecords

log = logging.getLogger(__name__)

ORIGIN_SESSION = "plans"
# Drawings must fit in a stream event with room to spare for addressing (``<marti><dest uid/>`` per subscriber).
DRAW_LIMITS = Limits(max_event_bytes=Limits().max_event_bytes - 32 * 1024)
# A change that loses the race for a version number (another node wrote first) is redone on top of
# the newer version, after a short random pause so that two busy nodes stop colliding.
_ATTEMPTS = 20
_BACKOFF_S = 0.02
EMPTY = Plan()


class VersionNotFound(MissionError):
    """No such version of the mission's plan."""

    status = 404


def uid_prefix(mission: Mission) -> str:
    """The prefix of the CoT uids of a mission's plan drawings (stable for the mission's life)."""
    return f"rp-plan.{mission.guid}"


class PlanService:
    """Plans over a :class:`PlanRecords` store, with the rules of a :class:`MissionService`.

    ``accept`` takes the CoT made for subscribers (``Ingest.accept``; None: publish nothing).
    ``packages`` keeps the plan's data package when it is attached to the mission (None: not offered).
    It is attached to the node like a feature (no routes) so the node closes its store.
    """

    def __init__(self, store: PlanRecords, missions: MissionService, clock: Clock,
                 accept: Callable[[Envelope], object] | None = None,
                 packages: DataPackageService | None = None) -> None:
        self._store = store
        self._missions = missions
        self._packages = packages
        self._clock = clock
        self._accept = accept
        self._lock = asyncio.Lock()
        self.published = 0
        self.refused = 0
        self.failed = 0

    # -- reading ------------------------------------------------------------------------------

    async def readable(self, caller: Caller, name: str) -> Mission:
        """The mission if the caller may read its plan (``MissionNotFound`` / ``MissionForbidden``)."""
        mission = await self._missions.find(caller, name)
        self._require(caller, mission, Permission.READ)
        return mission

    async def current(self, caller: Caller, name: str) -> tuple[Mission, PlanVersion | None]:
        """The mission and its newest plan version (None before the first change)."""
        mission = await self.readable(caller, name)
        return mission, await self._store.latest(mission.guid)

    async def version(self, caller: Caller, name: str, number: int) -> PlanVersion:
        """One version of the plan (``VersionNotFound``)."""
        mission = await self.readable(caller, name)
        return await self._version(mission, number)

    async def versions(self, caller: Caller, name: str, *, limit: int = 1000) -> list[VersionInfo]:
        """The plan's versions, oldest first, without their plans."""
        mission = await self.readable(caller, name)
        return await self._store.versions(mission.guid, limit=limit)

    async def diff(self, caller: Caller, name: str, from_version: int, to_version: int) -> PlanDiff:
        """What changed from one version to another (version 0 is the empty plan before the first)."""
        mission = await self.readable(caller, name)
        before = await self._plan_at(mission, from_version)
        after = await self._plan_at(mission, to_version)
        return diff_plans(before, after, from_version=from_version, to_version=to_version)

    # -- changing -----------------------------------------------------------------------------

    async def replace(self, caller: Caller, name: str, plan: Plan, reason: str, *,
                      base_version: int | None = None) -> PlanVersion:
        """Store ``plan`` as the new version; with ``base_version``, only if that is still the newest (else 409)."""
        return await self._change(caller, name, lambda _: plan, reason, base_version=base_version)

    async def patch(self, caller: Caller, name: str, patch: PlanPatch, reason: str, *,
                    base_version: int | None = None) -> PlanVersion:
        """Apply ``patch`` to the newest version and store the result as a new version."""
        return await self._change(caller, name, lambda current: apply_patch(current, patch), reason,
                                  base_version=base_version)

    async def revert(self, caller: Caller, name: str, to_version: int, reason: str) -> PlanVersion:
        """A new version equal to version ``to_version`` (the history stays whole)."""
        mission = await self._writable(caller, name)
        old = await self._version(mission, to_version)
        return await self._change(caller, name, lambda _: old.plan, reason, reverted_from=to_version)

    async def publish(self, caller: Caller, name: str) -> int:
        """Send every map item of the current plan to the mission's subscribers again; the events sent."""
        mission = await self._writable(caller, name)
        latest = await self._store.latest(mission.guid)
        if latest is None:
            return 0
        dests = await self._dests(caller, mission)
        return self._publish(mission, dests, diff_plans(EMPTY, latest.plan), EMPTY)

    async def attach_package(self, caller: Caller, name: str) -> str | None:
        """Store the current plan as a data package and add it to the mission's contents; its SHA-256.

        TAK clients see it in the mission (``t-x-m-c``) and download it like any mission package.
        None when there is no plan yet or the server keeps no packages.
        """
        mission = await self._writable(caller, name)
        latest = await self._store.latest(mission.guid)
        if latest is None or self._packages is None:
            return None
        label = f"{mission.name} plan v{latest.version}"
        data = await asyncio.to_thread(to_package, msgspec.json.encode(latest.plan), latest.plan,
                                       prefix=uid_prefix(mission), name=label, now_ms=self._clock.now_ms())
        writer = self._packages.spool()
        try:
            writer.write(data)
            upload = Upload(filename=sanitize_filename(f"{mission.name}-plan-v{latest.version}.zip", "plan.zip"),
                            submitter=caller.principal or caller.client_uid or "anonymous", groups=mission.groups,
                            creator_uid=caller.client_uid, keywords=("missionpackage", "plan"), require_zip=True)
            record, _ = await self._packages.store(writer, upload)
        except BaseException:
            writer.discard()
            raise
        await self._missions.add(caller, name, [record.hash], [])
        log.info("plan package attached", extra={"mission": name, "version": latest.version, "hash": record.hash})
        return record.hash

    async def _writable(self, caller: Caller, name: str) -> Mission:
        mission = await self._missions.find(caller, name)
        self._require(caller, mission, Permission.WRITE)
        return mission

    def _require(self, caller: Caller, mission: Mission, permission: Permission) -> None:
        if not self._missions.role_of(caller, mission).allows(permission):
            raise MissionForbidden(f"{permission.value} needed in mission {mission.name!r}")

    async def _change(self, caller: Caller, name: str, make: Callable[[Plan], Plan], reason: str, *,
                      base_version: int | None = None, reverted_from: int | None = None) -> PlanVersion:
        try:
            reason = check_reason(reason)
            mission = await self._writable(caller, name)
            author = caller.principal or caller.client_uid or "anonymous"
            for attempt in range(1, _ATTEMPTS + 1):
                async with self._lock:
                    latest = await self._store.latest(mission.guid)
                    number = latest.version if latest is not None else 0
                    if base_version is not None and base_version != number:
                        raise MissionConflict(f"the plan is at version {number}, not {base_version}; "
                                              "read it again and redo the change")
                    before = latest.plan if latest is not None else EMPTY
                    # CPU-bound on large plans: off the event loop, like the airdrop computation.
                    after = await asyncio.to_thread(check_plan, make(before))
                    after = await self._computed(before, after)
                    await asyncio.to_thread(self._check_drawable, mission, before, after)
                    version = PlanVersion(mission_guid=mission.guid, version=number + 1, author=author,
                                          time_ms=self._clock.now_ms(), reason=reason, plan=after,
                                          reverted_from=reverted_from)
                    if await self._store.append(version):
                        break
                if await self._missions.store.by_guid(mission.guid) is None:
                    raise MissionNotFound(name)
                await asyncio.sleep(random.uniform(0, _BACKOFF_S * attempt))
            else:
                raise MissionConflict("the plan changed too often meanwhile; try again")
        except PlanInvalid:
            self.refused += 1
            raise
        log.info("plan changed", extra={"mission": name, "version": version.version, "principal": caller.principal})
        self._publish(mission, await self._dests(caller, mission), diff_plans(before, after), before)
        return version

    async def _computed(self, before: Plan, after: Plan) -> Plan:
        """``after`` with every airdrop's result computed from its request (kept when the request is unchanged)."""
        if not after.airdrops:
            return after
        previous = {a.id: a for a in before.airdrops}
        drops: list[AirdropItem] = []
        for item in after.airdrops:
            old = previous.get(item.id)
            if old is not None and old.request == item.request and old.result is not None:
                drops.append(msgspec.structs.replace(item, result=old.result))
                continue
            try:
                result = await asyncio.to_thread(plan_airdrop, item.request)
            except PlanError as exc:
                raise PlanInvalid(f"airdrop {item.id!r}: {exc}") from exc
            drops.append(msgspec.structs.replace(item, result=result))
        return msgspec.structs.replace(after, airdrops=tuple(drops))

    def _check_drawable(self, mission: Mission, before: Plan, after: Plan) -> None:
        """Refuse a plan whose new or changed map items would not fit in one CoT event each."""
        diff = diff_plans(before, after)
        prefix = uid_prefix(mission)
        for kind, item in [(r.kind, r.item) for r in diff.added] + [(c.kind, c.after) for c in diff.changed]:
            try:
                item_events(kind, item, prefix=prefix, now_ms=0, limits=DRAW_LIMITS)
            except LimitExceeded as exc:
                raise PlanInvalid(
                    f"{kind.value[:-1]} {item.id!r}: too large to draw as one CoT event ({exc.got} bytes, at most "
                    f"{exc.limit}); split it or shorten its names") from exc

    # -- CoT to subscribers -------------------------------------------------------------------

    async def _dests(self, caller: Caller, mission: Mission) -> tuple[str, ...]:
        """The client uids subscribed to ``mission`` (who gets its plan drawings)."""
        try:
            subs = await self._missions.subscriptions(caller, mission.name)
        except MissionError:
            return ()  # the mission went away meanwhile
        return tuple(sorted({s.client_uid for s in subs}))

    def _publish(self, mission: Mission, dests: tuple[str, ...], diff: PlanDiff, before: Plan) -> int:
        if self._accept is None or not dests:
            return 0
        now = self._clock.now_ms()
        prefix = uid_prefix(mission)
        old = {(kind, item.id): item for kind, item in items_of(before)}
        events: list[CotEvent] = []
        drawn: list[tuple[ItemKind, PlanItem]] = [(r.kind, r.item) for r in diff.added]
        drawn += [(c.kind, c.after) for c in diff.changed]
        for kind, item in drawn:
            try:
                events.extend(item_events(kind, item, prefix=prefix, now_ms=now, dests=dests))
            except RemoteProtocolError as exc:
                # Checked before storing (with room for addressing); a very long subscriber list may still not fit.
                self.failed += 1
                log.warning("plan item not drawn", extra={"mission": mission.name, "item": item.id, "reason": str(exc)})
            previous = old.get((kind, item.id))
            if previous is not None:
                # A drawing the item no longer makes (an objective without a point now, ...).
                kept = {uid for uid, _ in drawn_uids(kind, item, prefix)}
                events.extend(delete_event(uid, t, now_ms=now, dests=dests)
                              for uid, t in drawn_uids(kind, previous, prefix) if uid not in kept)
        for ref in diff.removed:
            events.extend(delete_event(uid, t, now_ms=now, dests=dests)
                          for uid, t in drawn_uids(ref.kind, ref.item, prefix))
        origin = Origin(session_id=ORIGIN_SESSION, groups=mission.groups)
        sent = 0
        for event in events:
            try:
                self._accept(Envelope(event, origin, now))
            except RemoteProtocolError as exc:
                # Refused by the identity rules (a client's device already holds this uid): the
                # version is stored all the same; the drawing is counted and logged as not sent.
                self.failed += 1
                log.warning("plan drawing refused", extra={"mission": mission.name, "uid": event.uid,
                                                           "reason": str(exc)})
                continue
            sent += 1
        self.published += sent
        return sent

    # -- plumbing -----------------------------------------------------------------------------

    async def _version(self, mission: Mission, number: int) -> PlanVersion:
        found = await self._store.get(mission.guid, number)
        if found is None:
            raise VersionNotFound(f"the plan of {mission.name!r} has no version {number}")
        return found

    async def _plan_at(self, mission: Mission, number: int) -> Plan:
        return EMPTY if number == 0 else (await self._version(mission, number)).plan

    def counters(self) -> list[tuple[str, str, float]]:
        """Counters for ``/metrics``."""
        return [
            ("rallypoint_plan_cot_published", "Plan drawings and erasures sent to mission subscribers",
             float(self.published)),
            ("rallypoint_plan_changes_refused", "Plan changes refused as invalid", float(self.refused)),
            ("rallypoint_plan_cot_failed", "Plan drawings that could not be made (too large with their addressing)",
             float(self.failed)),
        ]

    # -- node lifecycle (a feature without routes) --------------------------------------------

    @property
    def routes(self) -> tuple[()]:
        """No routes: the native API serves plans."""
        return ()

    def observe(self, envelope: Envelope, audience: object) -> None:
        """Plans keep no state from the picture."""
        return None

    async def run(self) -> None:
        """Nothing runs in the background."""
        return None

    async def close(self) -> None:
        """Close the plan store."""
        await self._store.close()
