"""The plan service over real stores (SQLite, PostgreSQL) and a real mission service: rules, CoT, two nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from rallypoint.clock import ManualClock
from rallypoint.model.mission import CreateRequest
from rallypoint.model.plan import Plan, PlanPatch, Resource, Route, Waypoint
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.security.policy import SPOOFED_UID, IdentityRefused
from rallypoint.services.missions import MissionService
from rallypoint.services.missions_access import Caller, MissionConflict, MissionForbidden, MissionNotFound
from rallypoint.services.plans import PlanService, VersionNotFound
from rallypoint.services.plans_validate import PlanInvalid
from rallypoint.storage.factory import Stores, open_stores
from tests.unit.services.plans.sample import full_plan

ALICE = Caller(principal="alice", write_groups=frozenset({"Blue"}), read_groups=frozenset({"Blue"}),
               client_uid="ANDROID-alice")
BOB = Caller(principal="bob", write_groups=frozenset({"Blue"}), read_groups=frozenset({"Blue"}),
             client_uid="ANDROID-bob")
CAROL = Caller(principal="carol", write_groups=frozenset({"Blue"}), read_groups=frozenset({"Blue"}),
               client_uid="ANDROID-carol")
RED = Caller(principal="eve", write_groups=frozenset({"Red"}), read_groups=frozenset({"Red"}), client_uid="ANDROID-eve")


class Node:
    """One node's mission and plan services over the shared missions database."""

    def __init__(self, stores: Stores, clock: ManualClock) -> None:
        self.stores = stores
        self.clock = clock
        self.missions = MissionService(stores.missions(), Directory(), clock)
        self.accepted: list[Envelope] = []
        self.plans = PlanService(stores.plans(), self.missions, clock, accept=self.accepted.append)

    async def close(self) -> None:
        await self.plans.close()
        await self.missions.store.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    """Two nodes sharing one missions database: a SQLite file, or a PostgreSQL database."""
    clock = ManualClock()
    if request.param == "sqlite":
        url = "sqlite://"
    else:
        url = await request.getfixturevalue("postgres_database").fresh()
    a, b = Node(open_stores(url, tmp_path), clock), Node(open_stores(url, tmp_path), clock)
    await a.missions.create(ALICE, CreateRequest(name="Op"))
    await a.missions.subscribe(BOB, "Op")
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_changes_are_versioned_and_drawn_for_the_subscribers(nodes: tuple[Node, Node]) -> None:
    node, _ = nodes
    _, none = await node.plans.current(CAROL, "Op")
    assert none is None
    first = await node.plans.replace(ALICE, "Op", full_plan(), "first draft")
    assert (first.version, first.author, first.reason) == (1, "alice", "first draft")
    drawn = {(e.event.type, e.event.uid.rsplit(".", 1)[-1]) for e in node.accepted}
    assert drawn == {("u-d-f", "sector-a"), ("b-m-r", "ingress"), ("b-m-p-s-m", "obj-1")}
    for envelope in node.accepted:
        assert [d.uid for d in envelope.event.detail.dests] == ["ANDROID-alice", "ANDROID-bob"]
        assert envelope.origin.groups == frozenset({"Blue"})
    node.accepted.clear()

    second = await node.plans.patch(BOB, "Op", PlanPatch(remove=("ingress", "water")), "route closed")
    assert second.version == 2 and second.author == "bob"
    assert [(e.event.type, e.event.detail.link_uid) for e in node.accepted] == [
        ("t-x-d-d", f"rp-plan.{(await node.missions.find(ALICE, 'Op')).guid}.ingress")]

    diff = await node.plans.diff(CAROL, "Op", 1, 2)
    assert [r.id for r in diff.removed] == ["ingress", "water"] and not diff.added and not diff.changed
    reverted = await node.plans.revert(ALICE, "Op", 1, "reopened")
    assert reverted.version == 3 and reverted.reverted_from == 1 and reverted.plan == first.plan
    assert [v.version for v in await node.plans.versions(CAROL, "Op")] == [1, 2, 3]
    with pytest.raises(VersionNotFound):
        await node.plans.version(CAROL, "Op", 9)


async def test_the_mission_rules_apply(nodes: tuple[Node, Node]) -> None:
    node, _ = nodes
    with pytest.raises(MissionForbidden):
        await node.plans.replace(CAROL, "Op", full_plan(), "not subscribed")
    with pytest.raises(MissionNotFound):
        await node.plans.current(RED, "Op")
    with pytest.raises(PlanInvalid, match="reason"):
        await node.plans.replace(ALICE, "Op", full_plan(), "")
    await node.plans.replace(ALICE, "Op", Plan(), "empty", base_version=0)
    with pytest.raises(MissionConflict, match="version 1, not 0"):
        await node.plans.replace(ALICE, "Op", full_plan(), "stale", base_version=0)
    assert node.plans.refused == 1


async def test_two_nodes_changing_at_once_lose_nothing(nodes: tuple[Node, Node]) -> None:
    a, b = nodes

    def add(n: int) -> PlanPatch:
        return PlanPatch(upsert=Plan(resources=(Resource(id=f"r{n}", name=f"crate {n}"),)))

    await asyncio.gather(*(node.plans.patch(ALICE, "Op", add(n), f"crate {n}")
                           for n in range(12) for node in ((a,) if n % 2 else (b,))))
    _, latest = await a.plans.current(ALICE, "Op")
    assert latest is not None and latest.version == 12
    assert sorted(r.id for r in latest.plan.resources) == sorted(f"r{n}" for n in range(12))
    assert [v.version for v in await b.plans.versions(ALICE, "Op")] == list(range(1, 13))


async def test_airdrop_results_are_computed_by_the_server(nodes: tuple[Node, Node]) -> None:
    node, _ = nodes
    plan = full_plan(with_airdrop=True)
    first = await node.plans.replace(ALICE, "Op", plan, "drop")
    computed = first.plan.airdrops[0].result
    assert computed is not None and computed.advisory
    forged = msgspec.structs.replace(computed, advisory="trust me")
    again = await node.plans.replace(
        ALICE, "Op", msgspec.structs.replace(plan, airdrops=(msgspec.structs.replace(plan.airdrops[0],
                                                                                      result=forged),)), "same drop")
    assert again.plan.airdrops[0].result == computed
    assert {e.event.uid.rsplit(".", 2)[-2:][-1] for e in node.accepted if ".drop-1." in e.event.uid} >= {"carp", "dz"}


async def test_a_route_at_the_waypoint_limit_is_drawn_and_one_too_large_to_draw_is_refused(
        nodes: tuple[Node, Node]) -> None:
    node, _ = nodes
    route = Route(id="long", name="Long", waypoints=tuple(Waypoint(-89.0 + i * 1e-4, -179.0 + i * 1e-4, f"CP{i}")
                                                          for i in range(2000)))
    await node.plans.replace(ALICE, "Op", Plan(routes=(route,)), "long route")
    (drawn,) = [e for e in node.accepted if e.event.type == "b-m-r"]
    assert drawn.event.detail.xml.count(b"b-m-p-w") == 2000
    wordy = msgspec.structs.replace(route, id="r" * 64, waypoints=tuple(
        Waypoint(-89.1234567, -179.1234567, "&" * 40) for _ in range(2000)))
    with pytest.raises(PlanInvalid, match="too large to draw as one CoT event"):
        await node.plans.replace(ALICE, "Op", Plan(routes=(wordy,)), "too wordy")
    _, latest = await node.plans.current(ALICE, "Op")
    assert latest is not None and latest.version == 1


async def test_a_drawing_refused_by_the_identity_rules_does_not_undo_the_change(nodes: tuple[Node, Node]) -> None:
    node, _ = nodes
    sent: list[str] = []

    def accept(envelope: Envelope) -> None:
        if envelope.event.uid.endswith(".sector-a"):
            raise IdentityRefused(SPOOFED_UID, "uid held by another principal")
        sent.append(envelope.event.uid)

    plans = PlanService(node.stores.plans(), node.missions, node.clock, accept=accept)
    try:
        version = await plans.replace(ALICE, "Op", full_plan(), "first draft")
        assert version.version == 1
        assert len(sent) == 2 and plans.failed == 1 and plans.published == 2
    finally:
        await plans.close()
