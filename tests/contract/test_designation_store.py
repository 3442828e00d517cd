"""DesignationRecords contract: what ``services.designations`` relies on, on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from rallypoint.model.designation import Affiliation, Category, Designation, Kind, State, Vertex
from rallypoint.storage.base.designations import DesignationRecords
from rallypoint.storage.factory import POSTGRES_STORES
from tests.contract.conftest import stores_for


@pytest.fixture(params=["sqlite", "postgres"] if "designations" in POSTGRES_STORES else ["sqlite"])
async def designation_records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DesignationRecords]:
    backend = (await stores_for(request, tmp_path)).designations()
    try:
        yield backend
    finally:
        await backend.close()


def designation(n: int, *, state: State = State.PROPOSED, mission: str | None = None) -> Designation:
    return Designation(
        id=f"d{n:04d}", kind=Kind.POINT, title=f"casualty {n}", category=Category.CASUALTY,
        affiliation=Affiliation.FRIEND, priority=1, notes="two walking wounded", point=Vertex(39.1, -120.0),
        polygon=(), hae=None, attachments=("ab" * 32,), mission=mission, proposer="alice",
        proposer_groups=("Blue",), state=state, proposed_ms=1000 + n, updated_ms=1000 + n,
    )


async def test_a_designation_reads_back_whole(designation_records: DesignationRecords) -> None:
    d = designation(1, mission="sweep")
    await designation_records.insert(d)
    assert await designation_records.get("d0001") == d
    assert await designation_records.get("nope") is None


async def test_an_area_keeps_its_vertices_in_order(designation_records: DesignationRecords) -> None:
    ring = (Vertex(1.0, 1.0), Vertex(1.0, 2.0), Vertex(2.0, 2.0), Vertex(2.0, 1.0))
    d = msgspec.structs.replace(designation(2), kind=Kind.AREA, polygon=ring, category=Category.HAZARD, hae=12.5)
    await designation_records.insert(d)
    got = await designation_records.get("d0002")
    assert got is not None and got.polygon == ring and got.cot_type == "u-d-f" and got.hae == 12.5


async def test_list_is_in_proposal_order_and_filters(designation_records: DesignationRecords) -> None:
    for n in (3, 1, 2):
        await designation_records.insert(designation(n, mission="sweep" if n != 2 else None))
    assert [d.id for d in await designation_records.list()] == ["d0001", "d0002", "d0003"]
    approved = msgspec.structs.replace(designation(1, mission="sweep"), state=State.APPROVED, approver="bob")
    assert await designation_records.transition(approved, expected=State.PROPOSED)
    assert [d.id for d in await designation_records.list(state=State.APPROVED)] == ["d0001"]
    assert [d.id for d in await designation_records.list(state=State.PROPOSED)] == ["d0002", "d0003"]
    assert [d.id for d in await designation_records.list(mission="sweep")] == ["d0001", "d0003"]
    assert [d.id for d in await designation_records.list(state=State.PROPOSED, mission="sweep")] == ["d0003"]


async def test_the_json_listing_is_the_listing_encoded(designation_records: DesignationRecords) -> None:
    for n in (2, 1):
        await designation_records.insert(designation(n, mission="sweep"))
    raw = await designation_records.list_json(state=State.PROPOSED, mission="sweep")
    assert [msgspec.json.decode(b, type=Designation) for b in raw] == await designation_records.list()
    assert await designation_records.list_json(state=State.APPROVED) == []


async def test_a_transition_happens_once(designation_records: DesignationRecords) -> None:
    await designation_records.insert(designation(1))
    approved = msgspec.structs.replace(designation(1), state=State.APPROVED, approver="bob", shared_groups=("Red",))
    assert await designation_records.transition(approved, expected=State.PROPOSED)
    rejected = msgspec.structs.replace(designation(1), state=State.REJECTED, reason="late")
    assert not await designation_records.transition(rejected, expected=State.PROPOSED)
    assert await designation_records.get("d0001") == approved
    assert not await designation_records.transition(designation(9), expected=State.PROPOSED)
    assert await designation_records.get("d0009") is None


async def test_racing_transitions_leave_exactly_one_winner(designation_records: DesignationRecords) -> None:
    await designation_records.insert(designation(1))
    tries = [msgspec.structs.replace(designation(1), state=State.APPROVED, approver=f"approver{i}") for i in range(6)]
    results = await asyncio.gather(*(designation_records.transition(t, expected=State.PROPOSED) for t in tries))
    assert sum(results) == 1
    winner = tries[results.index(True)]
    assert await designation_records.get("d0001") == winner
