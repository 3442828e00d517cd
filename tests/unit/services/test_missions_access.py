"""Mission access rules: who an invitation applies to, who may write, which packages may be added."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.model.mission import InviteType, Permission, Role
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.services.missions import CreateRequest, MissionService
from rallypoint.services.missions_access import (
    ContentNotFound,
    InvalidMissionRequest,
    MissionForbidden,
)
from rallypoint.storage.sqlite.missions import SqliteMissionStore
from tests.unit.services.test_missions import (
    ALICE,
    BLUE_HASH,
    BOB,
    CAROL,
    EVE,
    HASH,
    HASH2,
    caller,
    connect,
    describe,
    marker,
)


@pytest.fixture
def directory() -> Directory:
    return Directory()


@pytest.fixture
async def service(tmp_path: Path, directory: Directory) -> AsyncIterator[MissionService]:
    store = SqliteMissionStore(tmp_path / "missions.db")
    yield MissionService(store, directory, ManualClock(), describe=describe)
    await store.close()


async def test_invitation_is_not_taken_by_naming_the_invitees_uid(service: MissionService) -> None:
    await service.create(ALICE, CreateRequest(name="Closed", invite_only=True))
    await service.create(ALICE, CreateRequest(name="Open"))
    await service.invite(ALICE, "Closed", InviteType.CLIENT_UID, "uid-carol", Role.OWNER)
    await service.invite(ALICE, "Open", InviteType.CLIENT_UID, "uid-carol", Role.OWNER)
    # Bob names Carol's uid, which he does not hold: the invitation is not his.
    impostor = caller("bob", {"Red"}, "uid-carol", held=False)
    with pytest.raises(MissionForbidden):
        await service.subscribe(impostor, "Closed")
    assert (await service.subscribe(impostor, "Open")).role is Role.SUBSCRIBER
    # Carol, holding her uid, gets the invited role; Bob's squatting subscription is replaced.
    assert (await service.subscribe(CAROL, "Closed")).role is Role.OWNER
    taken = await service.subscribe(CAROL, "Open")
    assert taken.role is Role.OWNER and taken.principal == "carol"
    assert [s.principal for s in await service.subscriptions(ALICE, "Open") if s.client_uid == "uid-carol"] == [
        "carol"
    ]


async def test_callsign_invitation_needs_the_uid_held(service: MissionService, directory: Directory) -> None:
    connect(directory, "s-carol", "uid-carol", {"Red"})  # callsign UID-CAROL
    await service.create(ALICE, CreateRequest(name="Closed", invite_only=True))
    await service.invite(ALICE, "Closed", InviteType.CALLSIGN, "UID-CAROL")
    with pytest.raises(MissionForbidden):
        await service.subscribe(caller("bob", {"Red"}, "uid-carol"), "Closed")
    assert (await service.subscribe(CAROL, "Closed")).role is Role.SUBSCRIBER


async def test_members_without_subscription_read_but_do_not_write(
    service: MissionService, directory: Directory
) -> None:
    await service.create(ALICE, CreateRequest(name="Op"))
    await service.add(ALICE, "Op", [HASH], ["marker-1"])
    mission = await service.find(BOB, "Op")
    assert service.role_of(BOB, mission) is Role.READONLY
    assert [c.hash for c in (await service.details(BOB, mission)).contents] == [HASH]
    assert await service.changes(BOB, mission)
    for attempt in (
        service.add(BOB, "Op", [HASH2], []),
        service.remove(BOB, "Op", uid="marker-1"),
        service.set_keywords(BOB, "Op", ["k"]),
        service.invite(BOB, "Op", InviteType.CLIENT_UID, "uid-carol"),
    ):
        with pytest.raises(MissionForbidden):
            await attempt
    # Mission-addressed CoT from a member that has not subscribed is not taken into the mission.
    connect(directory, "s-bob", "uid-bob", {"Red"})
    env = Envelope(marker("m-1", "Op"), Origin(session_id="s-bob", groups=frozenset({"Red"}), principal="bob"), 5)
    assert service.route_cot(env) == []
    # Subscribed with the default role, the same member writes.
    assert (await service.subscribe(BOB, "Op")).role.allows(Permission.WRITE)
    assert await service.add(BOB, "Op", [HASH2], [])
    assert service.route_cot(env) == ["Op"]


async def test_only_stored_packages_the_caller_reads_are_added(service: MissionService) -> None:
    await service.create(ALICE, CreateRequest(name="Op"))
    # Eve's package is in Blue: Alice (Red) cannot add it, nor learn anything about it.
    with pytest.raises(ContentNotFound) as refused:
        await service.add(ALICE, "Op", [BLUE_HASH], [])
    assert "blue-secret" not in str(refused.value)
    with pytest.raises(ContentNotFound):
        await service.add(ALICE, "Op", ["00" * 32], [])
    # All or nothing: a readable hash beside a missing one is not added either.
    with pytest.raises(ContentNotFound):
        await service.add(ALICE, "Op", [HASH, "00" * 32], ["marker-1"])
    details = await service.details(ALICE, await service.find(ALICE, "Op"))
    assert details.contents == [] and details.items == []
    changes = await service.add(ALICE, "Op", [HASH], [])
    assert [c.content_hash for c in changes] == [HASH]
    added = (await service.details(ALICE, await service.find(ALICE, "Op"))).contents
    assert [(c.name, c.size, c.submitter) for c in added] == [("red.zip", 10, "alice")]
    # Eve can add her own package to a Blue mission.
    await service.create(EVE, CreateRequest(name="BlueOp"))
    assert await service.add(EVE, "BlueOp", [BLUE_HASH], [])


async def test_keywords_are_set_removed_announced_and_kept(
    tmp_path: Path, service: MissionService, directory: Directory
) -> None:
    await service.create(ALICE, CreateRequest(name="Op", keywords=("old",)))
    bob = connect(directory, "s-bob", "uid-bob", {"Red"})
    eve = connect(directory, "s-eve", "uid-eve", {"Blue"})
    updated = await service.set_keywords(ALICE, "Op", ["alpha", "bravo", "alpha"])
    assert updated.keywords == ("alpha", "bravo")
    assert (await service.find(BOB, "Op")).keywords == ("alpha", "bravo")
    notice = bob.got[-1].event
    assert notice.type == "t-x-m-c" and b'type="KEYWORD"' in notice.detail.xml and eve.got == []
    assert (await service.remove_keyword(ALICE, "Op", "alpha")).keywords == ("bravo",)
    with pytest.raises(InvalidMissionRequest):
        await service.remove_keyword(ALICE, "Op", "alpha")
    for bad in ([""], ["x" * 300], ["a\nb"], [f"k{i}" for i in range(65)]):
        with pytest.raises(InvalidMissionRequest):
            await service.set_keywords(ALICE, "Op", bad)
    # The mirror and the database agree: a new service over the same file sees the same keywords.
    again = MissionService(SqliteMissionStore(tmp_path / "missions.db"), directory, ManualClock())
    try:
        assert (await again.find(BOB, "Op")).keywords == ("bravo",)
    finally:
        await again.store.close()
    assert (await service.set_keywords(ALICE, "Op", [])).keywords == ()
