"""Mission invitations: record them, tell invitees (now or when they reconnect), find the role one grants."""

from __future__ import annotations

from rallypoint.clock import Clock
from rallypoint.model.mission import Invitation, InviteType, Mission, Permission, Role, Subscription
from rallypoint.routing.directory import Directory, Subscriber
from rallypoint.services import missions_notify as notify
from rallypoint.services.missions_access import Caller, InvalidMissionRequest, require
from rallypoint.services.missions_post import MissionPost
from rallypoint.storage.base.missions import MissionRecords


class MissionInvites:
    """Invitations of missions found by the :class:`MissionService` (which owns the mirror and its lock)."""

    def __init__(self, store: MissionRecords, directory: Directory, post: MissionPost, clock: Clock) -> None:
        self._store = store
        self._directory = directory
        self._post = post
        self._clock = clock

    async def invite(self, caller: Caller, mission: Mission, subs: dict[str, Subscription], kind: InviteType,
                     invitee: str, role: Role | None = None) -> Invitation:
        """Invite a client uid, callsign or group to ``mission`` (whose subscriptions are ``subs``)."""
        require(mission, subs, caller, Permission.WRITE)
        granted = role or mission.default_role
        if granted is not mission.default_role:
            require(mission, subs, caller, Permission.SET_ROLE)
        if not invitee or len(invitee) > 256:
            raise InvalidMissionRequest("invalid invitee")
        now = self._clock.now_ms()
        invitation = Invitation(mission=mission.name, type=kind, invitee=invitee, creator_uid=caller.client_uid,
                                role=granted, create_time=now)
        await self._store.invite(mission.guid, invitation)
        targets: list[Subscriber] = []
        # Named again for the mailbox, which keeps the invitation for an invitee that is offline.
        uids: list[str] = []
        callsigns: list[str] = []
        groups: list[str] = []
        match kind:
            case InviteType.CLIENT_UID:
                found = self._directory.by_uid(invitee)
                targets, uids = ([found] if found is not None else []), [invitee]
            case InviteType.CALLSIGN:
                found = self._directory.by_callsign(invitee)
                targets, callsigns = ([found] if found is not None else []), [invitee]
            case InviteType.GROUP:
                targets, groups = list(self._directory.readers(invitee)), [invitee]
        event = notify.mission_notice(notify.INVITED, "INVITE", mission, author_uid=caller.client_uid,
                                      now_ms=now, role=granted)
        self._post.to_addressees(targets, mission, event, uids=uids, callsigns=callsigns, groups=groups)
        return invitation

    async def invited_role(self, mission: Mission, caller: Caller) -> Role | None:
        """The role the caller's uid, callsign or groups were invited with, or None.

        A uid or callsign invitation counts only when the caller holds that uid (``uid_held``):
        otherwise anyone in the mission's groups could name the invitee's uid and take its role.
        """
        session = self._directory.by_uid(caller.client_uid) if caller.uid_held else None
        callsign = self._directory.callsign_of(session.id) if session is not None else None
        for inv in await self._store.invitations(mission.guid):
            match inv.type:
                case InviteType.CLIENT_UID if caller.uid_held and inv.invitee == caller.client_uid:
                    return inv.role
                case InviteType.CALLSIGN if callsign is not None and inv.invitee == callsign:
                    return inv.role
                case InviteType.GROUP if inv.invitee in caller.read_groups:
                    return inv.role
        return None
