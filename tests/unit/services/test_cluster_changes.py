"""Changes told to every node: what a publication carries, who runs the listeners, and a mission
mirror following another node's changes through the shared store."""

from __future__ import annotations

from pathlib import Path

import msgspec

from rallypoint.bus.local import LocalBus
from rallypoint.clock import ManualClock
from rallypoint.model.cot import Detail
from rallypoint.model.mission import CreateRequest
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.cluster_changes import CHANGE_TYPE, Change, ChangeKind, ClusterChanges
from rallypoint.services.missions import MissionService
from rallypoint.services.missions_access import Caller, MissionNotFound
from rallypoint.storage.sqlite.missions import SqliteMissionStore


def _changes(node: str = "node-a") -> tuple[LocalBus, ClusterChanges, list[Change]]:
    bus = LocalBus(node)
    changes = ClusterChanges(bus, ManualClock())
    bus.subscribe(changes.observe)
    seen: list[Change] = []

    async def record(change: Change) -> None:
        seen.append(change)

    for kind in ChangeKind:
        changes.listen(kind, record)
    return bus, changes, seen


async def test_an_announced_change_runs_this_nodes_listeners_marked_local() -> None:
    _, changes, seen = _changes()
    changes.announce(ChangeKind.MISSION, "Op")
    changes.announce(ChangeKind.REVOCATIONS, payload=b'[{"serial": "0a"}]')
    await changes.close()
    assert seen == [
        Change(kind=ChangeKind.MISSION, key="Op", local=True),
        Change(kind=ChangeKind.REVOCATIONS, payload=b'[{"serial": "0a"}]', local=True),
    ]
    assert (changes.announced, changes.applied) == (2, 2)


async def test_a_change_of_another_node_is_not_local_and_other_events_are_ignored() -> None:
    _, changes, seen = _changes("node-b")
    captured: list[tuple[Envelope, Audience]] = []
    origin_bus = LocalBus("node-a")
    origin_bus.subscribe(lambda envelope, audience: captured.append((envelope, audience)))
    ClusterChanges(origin_bus, ManualClock()).announce(ChangeKind.ACCOUNTS)
    (envelope, audience), = captured
    assert envelope.event.type == CHANGE_TYPE and audience.is_empty and audience.delivery_only
    changes.observe(envelope, audience)  # as node B's bus hands it over
    other = Envelope(msgspec.structs.replace(envelope.event, type="b-m-p-s-m"), envelope.origin, 0)
    changes.observe(other, audience)
    await changes.close()
    assert seen == [Change(kind=ChangeKind.ACCOUNTS, local=False)]


async def test_a_malformed_change_is_counted_and_a_failing_listener_does_not_stop_others() -> None:
    _, changes, seen = _changes()

    async def broken(change: Change) -> None:
        raise RuntimeError("store unreachable")

    changes.listen(ChangeKind.ACCOUNTS, broken)
    captured: list[Envelope] = []
    bus = LocalBus("node-x")
    bus.subscribe(lambda envelope, audience: captured.append(envelope))
    ClusterChanges(bus, ManualClock()).announce(ChangeKind.ACCOUNTS)
    bad = captured[0].event
    bad = msgspec.structs.replace(bad, detail=Detail(xml=b"<not-json/>"))
    changes.observe(Envelope(bad, Origin(session_id="server", node="node-x"), 0), Audience(delivery_only=True))
    changes.observe(captured[0], Audience(delivery_only=True))
    await changes.close()
    assert changes.malformed == 1
    assert seen == [Change(kind=ChangeKind.ACCOUNTS, local=False)]
    assert (changes.applied, changes.failed) == (1, 1)


async def test_a_mission_mirror_follows_another_nodes_changes_on_refresh(tmp_path: Path) -> None:
    clock = ManualClock()
    # One store both nodes share (as PostgreSQL is shared); each service keeps its own mirror.
    store = SqliteMissionStore(tmp_path / "m.db")
    node_a = MissionService(store, Directory(), clock)
    node_b = MissionService(store, Directory(), clock)
    touched: list[str] = []
    node_a.on_change(touched.append)
    red = Caller(principal="red1", write_groups=frozenset({"Red"}), read_groups=frozenset({"Red"}),
                 client_uid="uid-red1")
    red2 = msgspec.structs.replace(red, principal="red2", client_uid="uid-red2")
    try:
        await node_b.load()  # loaded at start, before the mission exists
        await node_a.create(red, CreateRequest(name="Op"))
        assert touched == ["Op"]
        await node_b.refresh("Op")
        assert (await node_b.find(red2, "Op")).name == "Op"

        await node_b.subscribe(red2, "Op")
        await node_a.refresh("Op")
        assert {s.client_uid for s in await node_a.subscriptions(red, "Op")} == {"uid-red1", "uid-red2"}

        await node_a.delete(red, "Op")
        await node_b.refresh("Op")
        try:
            await node_b.find(red2, "Op")
        except MissionNotFound:
            pass
        else:
            raise AssertionError("node B still lists a mission node A deleted")
    finally:
        await store.close()
