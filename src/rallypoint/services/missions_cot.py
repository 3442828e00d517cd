"""Mission-addressed CoT: a CoT carrying ``<dest mission=.../>`` goes to the mission's subscribers.

Routing runs synchronously on the ingest path and only reads the :class:`MissionService`'s
in-memory mirror of missions and subscriptions (shared with it, never copied); recording then
stores the event as a mission uid, which tells subscribers with a ``t-x-m-c`` change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rallypoint.model.mission import (
    ChangeType,
    Mission,
    MissionChange,
    MissionContent,
    MissionItem,
    Permission,
    Subscription,
)
from rallypoint.protocol.wire import WireFormat
from rallypoint.routing.directory import Directory, Subscriber, can_reach
from rallypoint.routing.envelope import Envelope
from rallypoint.services.missions_access import Caller, effective_role
from rallypoint.services.missions_post import MissionPost
from rallypoint.storage.base.missions import MissionRecords

# Tells a mission's subscribers about changes: (mission, author uid, changes, contents by hash).
Changed = Callable[[Mission, str, list[MissionChange], dict[str, MissionContent]], None]
# Whether traffic of an exercise may join a mission: (exercise id, mission name) -> allowed.
ExerciseGate = Callable[[str, str], bool]


def no_exercise_traffic(exercise: str, mission: str) -> bool:
    """The gate until an exercise registry is attached: exercise traffic joins no mission."""
    return False


class MissionCot:
    """Routes and records mission-addressed CoT against a :class:`MissionService`'s live mirror."""

    def __init__(
        self,
        store: MissionRecords,
        directory: Directory,
        post: MissionPost,
        missions: Mapping[str, Mission],
        subs: Mapping[str, dict[str, Subscription]],
        changed: Changed,
    ) -> None:
        self._store = store
        self._directory = directory
        self._post = post
        self._missions = missions
        self._subs = subs
        self._changed = changed
        self.exercise_gate: ExerciseGate = no_exercise_traffic

    def route_cot(self, envelope: Envelope) -> list[str]:
        """The missions a CoT addressed ``<dest mission=.../>`` may be written to.

        Returns the names of the missions the sender may write to (the caller records the event
        there with :meth:`record_cot`). Synchronous: runs on the bus path. Delivery to the
        subscribers is the dispatcher's, on every node (:meth:`receivers`). Exercise traffic
        (``model.exercise``) joins only the missions its exercise registered (``exercise_gate``).
        """
        origin = envelope.origin
        session = self._directory.get(origin.session_id)
        # A sender on another node is not in this directory: its origin carries its read groups.
        elsewhere = origin.read_groups if origin.read_groups is not None else origin.groups
        caller = Caller(
            principal=origin.principal, write_groups=origin.groups,
            read_groups=session.read_groups if session is not None else elsewhere,
            client_uid=self._directory.uid_of(origin.session_id) or envelope.event.uid,
        )
        accepted: list[str] = []
        exercise = envelope.event.exercise
        for dest in envelope.event.detail.dests:
            if dest.mission is None or dest.mission in accepted:
                continue
            mission = self._missions.get(dest.mission)
            if mission is None or not caller.sees(mission) or not can_reach(origin.groups, mission.groups):
                continue
            if exercise is not None and not self.exercise_gate(exercise, mission.name):
                continue
            if not effective_role(mission, self._subs.get(mission.name, {}), caller).allows(Permission.WRITE):
                continue
            accepted.append(mission.name)
        return accepted

    def receivers(self, envelope: Envelope, name: str) -> list[Subscriber]:
        """This node's sessions subscribed to mission ``name`` that get ``envelope`` addressed to it.

        Nobody when the sender may not write to the mission; never beyond the mission's groups,
        never the sender itself (the dispatcher's mission resolver).
        """
        if name not in self.route_cot(envelope):
            return []
        mission = self._missions[name]
        sender = envelope.origin.session_id
        return [s for s in self._post.sessions_of(self._subs.get(name, {}).values())
                if s.id != sender and can_reach(mission.groups, s.read_groups)]

    async def record_cot(self, name: str, envelope: Envelope) -> bool:
        """Store a mission-addressed CoT in the mission; True (and ``t-x-m-c``) when its uid is new there."""
        mission = self._missions.get(name)
        if mission is None:
            return False
        sender_uid = self._directory.uid_of(envelope.origin.session_id) or envelope.event.uid
        item = item_of(envelope, sender_uid, envelope.received_ms)
        change = MissionChange(type=ChangeType.ADD_CONTENT, mission=name, creator_uid=sender_uid,
                               timestamp=envelope.received_ms, content_uid=item.uid)
        if not await self._store.put_item(mission.guid, item, change):
            return False
        self._changed(mission, sender_uid, [change], {})
        return True


def item_of(envelope: Envelope, creator_uid: str, now: int) -> MissionItem:
    """A mission uid entry holding a snapshot of ``envelope``'s CoT."""
    event = envelope.event
    return MissionItem(uid=event.uid, creator_uid=creator_uid, timestamp=now, cot_type=event.type,
                       callsign=event.detail.callsign or "", xml=envelope.wire(WireFormat.XML))
