"""PlanRecords contract: plan versions beside their missions, on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rallypoint.model.mission import ChangeType, Mission, MissionChange, Role
from rallypoint.model.plan import Area, Phase, Plan, PlanVersion, Position, Route, VersionInfo, Waypoint
from rallypoint.storage.base.missions import MissionRecords
from rallypoint.storage.base.plans import PlanRecords
from tests.contract.conftest import _backends, stores_for


@pytest.fixture(params=_backends("missions"))
async def both(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[MissionRecords, PlanRecords]]:
    stores = await stores_for(request, tmp_path)
    missions, plans = stores.missions(), stores.plans()
    try:
        yield missions, plans
    finally:
        await plans.close()
        await missions.close()


async def make_mission(missions: MissionRecords, name: str, guid: str) -> Mission:
    m = Mission(name=name, guid=guid, create_time=1000, creator_uid="ANDROID-1", creator_principal="alice",
                groups=frozenset({"Blue"}), default_role=Role.SUBSCRIBER)
    assert await missions.create(m, MissionChange(type=ChangeType.CREATE_MISSION, mission=name,
                                                  creator_uid="ANDROID-1", timestamp=1000))
    return m


def plan(n: int) -> Plan:
    square = (Position(39.0, -120.0), Position(39.0, -119.9), Position(39.1, -119.9), Position(39.1, -120.0))
    return Plan(
        areas=(Area(id="sector-a", name=f"Sector A v{n}", vertices=square, color="#ff0000"),),
        routes=(Route(id="r1", name="Ingress", waypoints=tuple(Waypoint(39.0 + i / 100, -120.0, f"CP{i}")
                                                                for i in range(n + 2))),),
        phases=(Phase(id="p1", name="Search", start_ms=1_000, end_ms=2_000),),
    )


def version(guid: str, n: int, **kw: object) -> PlanVersion:
    return PlanVersion(mission_guid=guid, version=n, author="alice", time_ms=10_000 + n, reason=f"change {n}",
                       plan=plan(n), **kw)  # type: ignore[arg-type]


async def test_versions_read_back_whole_and_in_order(both: tuple[MissionRecords, PlanRecords]) -> None:
    missions, plans = both
    await make_mission(missions, "Op", "g1")
    assert await plans.latest("g1") is None
    assert await plans.versions("g1") == []
    for n in (1, 2, 3):
        assert await plans.append(version("g1", n))
    assert await plans.append(version("g1", 4, reverted_from=2))
    assert await plans.latest("g1") == version("g1", 4, reverted_from=2)
    assert await plans.get("g1", 2) == version("g1", 2)
    assert await plans.get("g1", 9) is None
    infos = await plans.versions("g1")
    assert [i.version for i in infos] == [1, 2, 3, 4]
    assert infos[3] == VersionInfo(version=4, author="alice", time_ms=10_004, reason="change 4", reverted_from=2)
    assert [i.version for i in await plans.versions("g1", limit=2)] == [3, 4]


async def test_a_taken_version_number_is_refused_and_nothing_changes(
        both: tuple[MissionRecords, PlanRecords]) -> None:
    missions, plans = both
    await make_mission(missions, "Op", "g1")
    assert await plans.append(version("g1", 1))
    other = PlanVersion(mission_guid="g1", version=1, author="bob", time_ms=5, reason="raced", plan=Plan())
    assert not await plans.append(other)
    assert await plans.get("g1", 1) == version("g1", 1)


async def test_plans_belong_to_their_mission_and_go_with_it(both: tuple[MissionRecords, PlanRecords]) -> None:
    missions, plans = both
    op = await make_mission(missions, "Op", "g1")
    await make_mission(missions, "Other", "g2")
    assert not await plans.append(version("nope", 1))
    assert await plans.append(version("g1", 1))
    assert await plans.append(version("g2", 1))
    assert await plans.latest("g2") == version("g2", 1)
    assert await missions.delete(op, MissionChange(type=ChangeType.DELETE_MISSION, mission="Op",
                                                   creator_uid="ANDROID-1", timestamp=2000))
    assert await plans.latest("g1") is None
    assert await plans.versions("g1") == []
    assert await plans.latest("g2") == version("g2", 1)
