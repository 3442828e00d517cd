"""Designations with two-person approval: propose, approve, reject, withdraw; who sees what.

Rules (``docs/designations.md`` is the contract):

* Proposing needs an account; the designation is visible only to the proposer and to readers of the
  proposer's (write) groups, and is shown on their maps as unapproved.
* Approving and rejecting need the ``approver`` role and someone other than the proposer: an
  admin is no exception (403). The approver must see the designation (read one of the proposer's
  groups; otherwise it does not exist for them: 404). A designation is decided once (409 after).
* The approver shares it with the proposer's groups, or with groups the approver names, which must
  be groups the approver writes (403 otherwise): nobody publishes to a group they cannot write to.
* Only the proposer withdraws, and only while it is proposed.
* Every transition (and every refused attempt to decide) is in the audit log with both identities.

Every CoT goes through ``Ingest.accept`` (the bus), so every node and client sees the same thing.
The state lives in the store (shared by every node on PostgreSQL), and a transition is conditional
on the state read, so two approvers on two nodes produce one approval and one 409. Nothing in a
designation triggers any action: it is published for people to read.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

import msgspec

from rallypoint.clock import Clock
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.model.cot_type import DELETE, Priority
from rallypoint.model.designation import (
    Approval,
    Designation,
    InvalidDesignation,
    Kind,
    Proposal,
    Rejection,
    State,
    Vertex,
    check_proposal,
)
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.designations_cot import approved_uid, delete_event, designation_event, proposed_uid
from rallypoint.services.missions_access import MissionError
from rallypoint.storage.base.designations import DesignationRecords

if TYPE_CHECKING:
    from rallypoint.services.designations_links import MissionLinks

log = logging.getLogger(__name__)

APPROVER_ROLE = "approver"
# Whether a caller may attach a package (by hash): ``(hash, actor) -> bool``.
PackageCheck = Callable[[str, "Actor"], Awaitable[bool]]


class Actor(msgspec.Struct, frozen=True):
    """Who acts: an authenticated principal, its write (IN) and read (OUT) groups, its role."""

    principal: str
    write_groups: frozenset[str]
    read_groups: frozenset[str]
    role: str = "member"


class _Audience(msgspec.Struct):
    """The fields of a stored designation that decide who sees it (the rest is skipped when decoding)."""

    proposer: str
    proposer_groups: tuple[str, ...]
    state: State
    shared_groups: tuple[str, ...] = ()


_AUDIENCE = msgspec.json.Decoder(_Audience)


class DesignationNotFound(Exception):
    """No designation by that id that the caller may see."""


class DesignationForbidden(Exception):
    """The caller may not do this to the designation (role, two-person rule, groups)."""


class DesignationConflict(Exception):
    """The designation was already decided (approved, rejected or withdrawn)."""


def same_principal(a: str | None, b: str | None) -> bool:
    """Account names compare without regard to case (as the user store does)."""
    return a is not None and b is not None and a.casefold() == b.casefold()


def rounded(proposal: Proposal) -> Proposal:
    """Positions to seven decimals of a degree (about a centimetre), before they are checked.

    Finer digits only add bytes to every answer; rounding first means the shape that is checked
    (distinct vertices, no crossing) is the shape that is kept.
    """

    def at(v: Vertex) -> Vertex:
        return Vertex(round(v.lat, 7), round(v.lon, 7))

    return msgspec.structs.replace(
        proposal, point=at(proposal.point) if proposal.point is not None else None,
        polygon=[at(v) for v in proposal.polygon] if proposal.polygon is not None else None,
    )


def may_see(d: Designation | _Audience, actor: Actor) -> bool:
    """The proposer, readers of the proposer's groups, and once approved, readers of the shared groups."""
    if same_principal(actor.principal, d.proposer) or not actor.read_groups.isdisjoint(d.proposer_groups):
        return True
    return d.state is State.APPROVED and not actor.read_groups.isdisjoint(d.shared_groups)


class DesignationService:
    """The workflow over a :class:`DesignationRecords`; publishes through ``accept`` and audits every step."""

    def __init__(
        self,
        store: DesignationRecords,
        *,
        accept: Callable[[Envelope], Audience],
        audit: Callable[[str, str, str, dict[str, str]], None],
        clock: Clock,
        package_readable: PackageCheck | None = None,
        missions: MissionLinks | None = None,
    ) -> None:
        self._store = store
        self._accept = accept
        self._audit = audit
        self._clock = clock
        self._package_readable = package_readable
        self._missions = missions
        self.counts = {"proposed": 0, "approved": 0, "rejected": 0, "withdrawn": 0, "refused": 0, "invalid": 0,
                       "publish_failed": 0, "mission_link_failed": 0}

    @property
    def store(self) -> DesignationRecords:
        """The store (closed by :meth:`close`)."""
        return self._store

    async def propose(self, actor: Actor, proposal: Proposal) -> Designation:
        """Record a proposal and show it, marked unapproved, to the proposer's groups."""
        proposal = rounded(proposal)
        try:
            check_proposal(proposal)
            await self._check_references(actor, proposal)
        except InvalidDesignation as exc:
            self.counts["invalid"] += 1
            log.info("designation proposal refused", extra={"actor": actor.principal, "reason": str(exc)[:200]})
            raise
        now = self._clock.now_ms()
        polygon = tuple(proposal.polygon or ())
        if polygon and polygon[0] == polygon[-1]:
            polygon = polygon[:-1]
        d = Designation(
            id=uuid.uuid4().hex, kind=Kind.AREA if polygon else Kind.POINT, title=proposal.title.strip(),
            category=proposal.category, affiliation=proposal.affiliation, priority=proposal.priority,
            notes=proposal.notes, point=proposal.point or polygon[0], polygon=polygon, hae=proposal.hae,
            attachments=tuple(dict.fromkeys(h.lower() for h in proposal.attachments)), mission=proposal.mission,
            proposer=actor.principal, proposer_groups=tuple(sorted(actor.write_groups)), state=State.PROPOSED,
            proposed_ms=now, updated_ms=now,
        )
        await self._store.insert(d)
        self.counts["proposed"] += 1
        self._audit(actor.principal, "designation.propose", d.id,
                    {"proposer": d.proposer, "groups": ",".join(d.proposer_groups), "kind": d.kind.value,
                     "category": d.category.value, "affiliation": d.affiliation.value})
        self._publish(designation_event(d, now_ms=now), d.proposer_groups, d.proposer, d.id)
        return d

    async def list(self, actor: Actor, *, state: State | None = None) -> list[Designation]:
        """The designations ``actor`` may see, oldest first, optionally of one state."""
        return [d for d in await self._store.list(state=state) if may_see(d, actor)]

    async def list_json(self, actor: Actor, *, state: State | None = None) -> bytes:
        """:meth:`list` as a JSON array, spliced from the stored encodings (nothing decoded but the audience)."""
        bodies = await self._store.list_json(state=state)
        return b"[" + b",".join(b for b in bodies if may_see(_AUDIENCE.decode(b), actor)) + b"]"

    async def get(self, actor: Actor, designation_id: str) -> Designation:
        """One designation ``actor`` may see (``DesignationNotFound`` otherwise)."""
        d = await self._store.get(designation_id)
        if d is None or not may_see(d, actor):
            raise DesignationNotFound(designation_id)
        return d

    async def approve(self, actor: Actor, designation_id: str, approval: Approval) -> Designation:
        """Approve and share with the chosen groups (default: the proposer's)."""
        d = await self._decidable(actor, designation_id, "approve")
        groups = tuple(sorted(set(approval.groups))) if approval.groups else d.proposer_groups
        outside = sorted(set(groups) - actor.write_groups) if approval.groups else []
        if outside:
            self._refused(actor, d, "approve", "groups outside the approver's")
            raise DesignationForbidden(f"you may share only with groups you write; not with {', '.join(outside)}")
        now = self._clock.now_ms()
        approved = msgspec.structs.replace(d, state=State.APPROVED, approver=actor.principal,
                                           decided_by=actor.principal, shared_groups=groups, updated_ms=now)
        await self._transition(approved)
        self.counts["approved"] += 1
        self._retract(d, now)
        self._publish(designation_event(approved, now_ms=now), groups, actor.principal, d.id)
        linked = approved.mission is not None and await self._link(approved)
        detail = {"proposer": d.proposer, "approver": actor.principal, "groups": ",".join(groups)}
        if linked and approved.mission is not None:
            detail["mission"] = approved.mission
        self._audit(actor.principal, "designation.approve", d.id, detail)
        return approved

    async def reject(self, actor: Actor, designation_id: str, rejection: Rejection) -> Designation:
        """Reject with a reason; the unapproved marker is deleted for those who saw it."""
        d = await self._decidable(actor, designation_id, "reject")
        if not rejection.reason.strip():
            raise InvalidDesignation("reason: must not be blank")
        now = self._clock.now_ms()
        rejected = msgspec.structs.replace(d, state=State.REJECTED, decided_by=actor.principal,
                                           reason=rejection.reason.strip(), updated_ms=now)
        await self._transition(rejected)
        self.counts["rejected"] += 1
        self._audit(actor.principal, "designation.reject", d.id,
                    {"proposer": d.proposer, "approver": actor.principal, "reason": rejected.reason or ""})
        self._retract(d, now)
        return rejected

    async def withdraw(self, actor: Actor, designation_id: str) -> Designation:
        """The proposer takes back a proposal; its unapproved marker is deleted."""
        d = await self.get(actor, designation_id)
        if not same_principal(actor.principal, d.proposer):
            self._refused(actor, d, "withdraw", "not the proposer")
            raise DesignationForbidden("only the proposer may withdraw a designation")
        if d.state is not State.PROPOSED:
            raise DesignationConflict(f"the designation is already {d.state.value}")
        now = self._clock.now_ms()
        withdrawn = msgspec.structs.replace(d, state=State.WITHDRAWN, decided_by=actor.principal, updated_ms=now)
        await self._transition(withdrawn)
        self.counts["withdrawn"] += 1
        self._audit(actor.principal, "designation.withdraw", d.id, {"proposer": d.proposer})
        self._retract(d, now)
        return withdrawn

    def counters(self) -> Iterable[tuple[str, str, float]]:
        """``(name, help, value)`` counters for ``/metrics``."""
        helps = {
            "mission_link_failed": "Approved designations not added to their mission (gone, or no longer writable)",
            "proposed": "Designations proposed", "approved": "Designations approved",
            "rejected": "Designations rejected", "withdrawn": "Designations withdrawn",
            "refused": "Designation decisions refused (role, two-person rule, groups)",
            "invalid": "Designation requests refused as invalid (bodies, proposals)",
            "publish_failed": "Designation CoT the picture refused to take",
        }
        return [(f"rallypoint_designations_{k}", helps[k], float(v)) for k, v in self.counts.items()]

    async def close(self) -> None:
        """Close the store."""
        await self._store.close()

    async def _decidable(self, actor: Actor, designation_id: str, attempt: str) -> Designation:
        d = await self.get(actor, designation_id)
        if actor.role != APPROVER_ROLE:
            self._refused(actor, d, attempt, f"role {actor.role}")
            raise DesignationForbidden(f"requires role approver (yours is {actor.role}; an admin is no exception)")
        if same_principal(actor.principal, d.proposer):
            self._refused(actor, d, attempt, "own proposal")
            raise DesignationForbidden("two-person rule: the proposer cannot decide their own designation")
        if d.state is not State.PROPOSED:
            raise DesignationConflict(f"the designation is already {d.state.value}")
        return d

    async def _transition(self, updated: Designation) -> None:
        if not await self._store.transition(updated, expected=State.PROPOSED):
            current = await self._store.get(updated.id)
            state = current.state.value if current is not None else "gone"
            raise DesignationConflict(f"the designation is already {state}")

    async def _check_references(self, actor: Actor, proposal: Proposal) -> None:
        for digest in proposal.attachments:
            if self._package_readable is None or not await self._package_readable(digest.lower(), actor):
                raise InvalidDesignation(f"attachment {digest[:12]}...: no data package with that hash you can read")
        if proposal.mission is not None and (
            self._missions is None or not await self._missions.writable(proposal.mission, actor)
        ):
            raise InvalidDesignation(f"mission {proposal.mission!r}: no such mission you can write to")

    async def _link(self, approved: Designation) -> bool:
        assert approved.mission is not None
        proposer = Actor(approved.proposer, frozenset(approved.proposer_groups), frozenset(approved.proposer_groups))
        try:
            if self._missions is not None and await self._missions.add(approved.mission, approved_uid(approved.id),
                                                                        proposer):
                return True
        except MissionError as exc:
            log.warning("approved designation not added to its mission",
                        extra={"designation": approved.id, "mission": approved.mission, "reason": str(exc)[:200]})
        self.counts["mission_link_failed"] += 1
        return False

    def _refused(self, actor: Actor, d: Designation, attempt: str, why: str) -> None:
        self.counts["refused"] += 1
        log.info("designation decision refused", extra={"designation": d.id, "actor": actor.principal,
                                                         "attempt": attempt, "reason": why})
        self._audit(actor.principal, "designation.refused", d.id,
                    {"attempt": attempt, "proposer": d.proposer, "actor": actor.principal, "reason": why})

    def _retract(self, d: Designation, now: int) -> None:
        # Sent as the proposal was (same groups, same origin), so exactly its audience loses it.
        self._publish(delete_event(proposed_uid(d.id), d.cot_type, now_ms=now), d.proposer_groups, d.proposer, d.id)

    def _publish(self, event: CotEvent, groups: Iterable[str], principal: str, designation_id: str) -> None:
        origin = Origin(session_id=f"designation:{designation_id}", groups=frozenset(groups), principal=principal)
        try:
            # Designations travel in the chat/task class; their deletes keep the delete class (the most urgent).
            priority = None if event.type == DELETE else Priority.MESSAGE
            self._accept(Envelope(event, origin, self._clock.now_ms(), priority=priority))
        except RemoteProtocolError as exc:
            # The decision stands (it is stored and audited); the map shows it once the cause is fixed.
            self.counts["publish_failed"] += 1
            log.error("designation CoT refused by the picture",
                      extra={"designation": designation_id, "uid": event.uid, "reason": exc.reason})
