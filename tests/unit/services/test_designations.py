"""The designation workflow and its CoT, over a real SQLite store, with a ManualClock and a recording accept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from rallypoint.clock import ManualClock
from rallypoint.model.cot_type import DELETE
from rallypoint.model.designation import (
    Affiliation,
    Approval,
    Category,
    Designation,
    InvalidDesignation,
    Proposal,
    Rejection,
    State,
    Vertex,
    check_polygon,
)
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.services.designations import (
    Actor,
    DesignationConflict,
    DesignationForbidden,
    DesignationNotFound,
    DesignationService,
)
from rallypoint.storage.sqlite.designations import SqliteDesignationStore

ALICE = Actor("alice", frozenset({"A"}), frozenset({"A"}))
BOB = Actor("bob", frozenset({"B"}), frozenset({"B"}))
CAROL = Actor("carol", frozenset({"A", "B"}), frozenset({"A", "B"}), role="approver")
ROOT = Actor("root", frozenset({"A"}), frozenset({"A"}), role="admin")
POINT = Proposal(title="Ford", category=Category.CASUALTY, affiliation=Affiliation.FRIEND, priority=1,
                 point=Vertex(39.1, -120.0))


class Recorder:
    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.audit: list[tuple[str, str, str, dict[str, str]]] = []

    def accept(self, envelope: Envelope) -> Audience:
        self.published.append(envelope)
        return Audience()

    def record(self, actor: str, action: str, target: str, detail: dict[str, str]) -> None:
        self.audit.append((actor, action, target, detail))


@pytest.fixture
def seen() -> Recorder:
    return Recorder()


@pytest.fixture
async def service(tmp_path: Path, seen: Recorder) -> AsyncIterator[DesignationService]:
    svc = DesignationService(SqliteDesignationStore(tmp_path / "designations.db"), accept=seen.accept,
                             audit=seen.record, clock=ManualClock())
    try:
        yield svc
    finally:
        await svc.close()


async def test_a_proposal_is_shown_unapproved_to_the_proposers_groups(service: DesignationService,
                                                                       seen: Recorder) -> None:
    d = await service.propose(ALICE, POINT)
    assert d.state is State.PROPOSED and d.proposer_groups == ("A",)
    (envelope,) = seen.published
    event = envelope.event
    assert event.uid == f"designation.{d.id}.proposed" and event.type == "a-f-G"
    assert event.detail.callsign == "UNAPPROVED: Ford"
    assert envelope.origin.groups == frozenset({"A"}) and envelope.origin.principal == "alice"
    xml = event.raw or b""
    assert b'state="proposed"' in xml and b"[UNAPPROVED designation, proposed by alice]" in xml
    assert seen.audit[0][:3] == ("alice", "designation.propose", d.id)


async def test_types_follow_affiliation_and_category(service: DesignationService, seen: Recorder) -> None:
    for affiliation, category, expected in [(Affiliation.HOSTILE, Category.VESSEL, "a-h-S"),
                                            (Affiliation.NEUTRAL, Category.AIRCRAFT, "a-n-A"),
                                            (Affiliation.UNKNOWN, Category.HAZARD, "a-u-G")]:
        d = await service.propose(ALICE, msgspec.structs.replace(POINT, affiliation=affiliation, category=category))
        assert d.cot_type == expected and seen.published[-1].event.type == expected
    ring = [Vertex(1, 1), Vertex(1, 2), Vertex(2, 2), Vertex(1, 1)]
    area = await service.propose(ALICE, msgspec.structs.replace(POINT, point=None, polygon=ring))
    event = seen.published[-1].event
    assert area.kind.value == "area" and len(area.polygon) == 3 and event.type == "u-d-f"
    assert (event.raw or b"").count(b"<link point=") == 4  # the ring is closed


async def test_two_person_rule(service: DesignationService, seen: Recorder) -> None:
    d = await service.propose(ALICE, POINT)
    with pytest.raises(DesignationForbidden, match="requires role approver"):
        await service.approve(ALICE, d.id, Approval())
    with pytest.raises(DesignationForbidden, match="admin is no exception"):
        await service.approve(ROOT, d.id, Approval())
    with pytest.raises(DesignationNotFound):
        await service.approve(msgspec.structs.replace(BOB, role="approver"), d.id, Approval())
    own = await service.propose(CAROL, POINT)
    with pytest.raises(DesignationForbidden, match="two-person rule"):
        await service.approve(msgspec.structs.replace(CAROL, principal="CAROL"), own.id, Approval())
    approved = await service.approve(CAROL, d.id, Approval(groups=["B"]))
    assert approved.state is State.APPROVED and approved.shared_groups == ("B",) and approved.approver == "carol"
    with pytest.raises(DesignationConflict, match="already approved"):
        await service.approve(CAROL, d.id, Approval())
    retract, final = seen.published[-2:]
    assert retract.event.type == DELETE and retract.event.detail.link_uid == f"designation.{d.id}.proposed"
    assert retract.origin.groups == frozenset({"A"})
    assert final.event.uid == f"designation.{d.id}" and final.origin.groups == frozenset({"B"})
    assert final.origin.principal == "carol"
    refusals = [a for a in seen.audit if a[1] == "designation.refused"]
    assert [r[3]["reason"] for r in refusals] == ["role member", "role admin", "own proposal"]


async def test_racing_approvals_give_one_approval(service: DesignationService) -> None:
    d = await service.propose(ALICE, POINT)
    dave = msgspec.structs.replace(CAROL, principal="dave")
    results = await asyncio.gather(service.approve(CAROL, d.id, Approval()), service.approve(dave, d.id, Approval()),
                                   return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Designation", "DesignationConflict"]


async def test_groups_the_approver_does_not_write_are_refused(service: DesignationService) -> None:
    d = await service.propose(ALICE, POINT)
    dave = Actor("dave", frozenset({"A"}), frozenset({"A"}), role="approver")
    with pytest.raises(DesignationForbidden, match="not with B"):
        await service.approve(dave, d.id, Approval(groups=["B", "A"]))
    assert (await service.approve(dave, d.id, Approval())).shared_groups == ("A",)


async def test_reject_and_withdraw(service: DesignationService, seen: Recorder) -> None:
    d = await service.propose(ALICE, POINT)
    with pytest.raises(InvalidDesignation):
        await service.reject(CAROL, d.id, Rejection(reason="   "))
    rejected = await service.reject(CAROL, d.id, Rejection(reason="duplicate"))
    assert rejected.state is State.REJECTED and rejected.reason == "duplicate" and rejected.approver is None
    assert seen.published[-1].event.type == DELETE
    w = await service.propose(ALICE, POINT)
    with pytest.raises(DesignationForbidden):
        await service.withdraw(CAROL, w.id)
    assert (await service.withdraw(ALICE, w.id)).state is State.WITHDRAWN
    with pytest.raises(DesignationConflict):
        await service.withdraw(ALICE, w.id)


async def test_visibility(service: DesignationService) -> None:
    d = await service.propose(ALICE, POINT)
    assert [x.id for x in await service.list(CAROL)] == [d.id]
    assert await service.list(BOB) == []
    await service.approve(CAROL, d.id, Approval(groups=["B"]))
    assert [x.id for x in await service.list(BOB, state=State.APPROVED)] == [d.id]
    assert await service.list(BOB, state=State.PROPOSED) == []


class Missions:
    """Stands in for MissionLinks: one writable mission, recording what is linked."""

    def __init__(self) -> None:
        self.linked: list[tuple[str, str, str]] = []

    async def writable(self, name: str, actor: Actor) -> bool:
        return name == "sweep"

    async def add(self, name: str, uid: str, actor: Actor) -> bool:
        self.linked.append((name, uid, actor.principal))
        return True


async def test_attachments_and_missions_must_exist(tmp_path: Path, seen: Recorder) -> None:
    async def readable(digest: str, actor: Actor) -> bool:
        return digest == "ab" * 32

    missions = Missions()
    svc = DesignationService(SqliteDesignationStore(tmp_path / "d.db"), accept=seen.accept, audit=seen.record,
                             clock=ManualClock(), package_readable=readable, missions=missions)  # type: ignore[arg-type]
    try:
        d = await svc.propose(ALICE, msgspec.structs.replace(POINT, attachments=["AB" * 32], mission="sweep"))
        assert d.attachments == ("ab" * 32,)
        with pytest.raises(InvalidDesignation, match="attachment"):
            await svc.propose(ALICE, msgspec.structs.replace(POINT, attachments=["cd" * 32]))
        with pytest.raises(InvalidDesignation, match="mission"):
            await svc.propose(ALICE, msgspec.structs.replace(POINT, mission="elsewhere"))
        assert missions.linked == []
        approved = await svc.approve(CAROL, d.id, Approval())
        # Linked as the proposer, once approved, under the approved uid.
        assert approved.mission == "sweep" and missions.linked == [("sweep", f"designation.{d.id}", "alice")]
        assert seen.audit[-1][1] == "designation.approve" and seen.audit[-1][3]["mission"] == "sweep"
    finally:
        await svc.close()


@pytest.mark.parametrize(("points", "words"), [
    ([(0, 0), (1, 1), (0, 1), (1, 0)], "cross"),
    ([(0, 0), (1, 1)], "at least 3"),
    ([(0, 0), (1, 1), (2, 2)], "no area"),
    ([(0, 0), (0, 1), (1, 1), (0, 1)], "repeats"),
    ([(0, 170), (1, -170), (1, 170)], "180th meridian"),
    ([(0, i * 1e-3) for i in range(300)], "at most 200"),
])
def test_bad_polygons(points: list[tuple[float, float]], words: str) -> None:
    with pytest.raises(InvalidDesignation, match=words):
        check_polygon(points)


def test_a_simple_polygon_passes() -> None:
    check_polygon([(0, 0), (0, 1), (1, 1), (1, 0), (0, 0)])


async def test_the_json_listing_matches_the_listing(service: DesignationService) -> None:
    d = await service.propose(ALICE, POINT)
    await service.propose(BOB, POINT)
    await service.approve(CAROL, d.id, Approval(groups=["B"]))
    for actor in (ALICE, BOB, CAROL, ROOT):
        for state in (None, State.APPROVED, State.PROPOSED):
            raw = await service.list_json(actor, state=state)
            expected = await service.list(actor, state=state)
            assert msgspec.json.decode(raw, type=list[Designation]) == expected


async def test_nothing_in_a_designation_acts(service: DesignationService, seen: Recorder) -> None:
    # Text that looks like markup or an alert stays text: no emergency, no chat, no addressing.
    loud = msgspec.structs.replace(POINT, title="911 Alert", notes='<emergency type="911 Alert"/><marti><dest/>')
    await service.propose(ALICE, loud)
    event = seen.published[-1].event
    assert event.type == "a-f-G" and event.detail.emergency is None and not event.detail.dests
    assert b"&lt;emergency" in (event.raw or b"")


async def test_positions_are_rounded_before_the_shape_is_checked(service: DesignationService) -> None:
    # Two vertices a nanodegree apart are one vertex once kept to seven decimals: refused, not stored.
    ring = [Vertex(1.0, 1.0), Vertex(1.0, 2.0), Vertex(2.0, 2.0), Vertex(2.0, 2.000000001)]
    with pytest.raises(InvalidDesignation, match="repeats"):
        await service.propose(ALICE, msgspec.structs.replace(POINT, point=None, polygon=ring))
    d = await service.propose(ALICE, msgspec.structs.replace(POINT, point=Vertex(39.123456789, -120.987654321)))
    assert d.point == Vertex(39.1234568, -120.9876543)
