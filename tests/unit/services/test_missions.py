"""Mission rules: group visibility, roles, invitations, notices, mission-addressed CoT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.model.cot import Point
from rallypoint.model.mission import ChangeType, CreateRequest, InviteType, MissionContent, Role
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.services.missions import MissionService
from rallypoint.services.missions_access import (
    Caller,
    InvalidMissionRequest,
    MissionConflict,
    MissionForbidden,
    MissionNotFound,
)
from rallypoint.storage.sqlite.missions import SqliteMissionStore

HASH = "ab" * 32
HASH2 = "cd" * 32
BLUE_HASH = "be" * 32
UPLOADED_HASH = "ef" * 32


def package(digest: str, name: str, size: int, submitter: str, creator_uid: str = "") -> MissionContent:
    """A stored package as ``describe`` answers it (stamped when it is added to a mission)."""
    return MissionContent(hash=digest, creator_uid=creator_uid, timestamp=0, name=name, size=size, submitter=submitter)


# The package store as the mission service sees it: hash -> (groups that read it, metadata).
PACKAGES = {
    HASH: (frozenset({"Red"}), package(HASH, "red.zip", 10, "alice")),
    HASH2: (frozenset({"Red"}), package(HASH2, "red2.zip", 20, "alice")),
    BLUE_HASH: (frozenset({"Blue"}), package(BLUE_HASH, "blue-secret.zip", 30, "eve")),
    # Uploaded with ?creatorUid=ANDROID-up (Marti /sync/upload or /sync/missionupload).
    UPLOADED_HASH: (frozenset({"Red"}), package(UPLOADED_HASH, "up.zip", 40, "alice", creator_uid="ANDROID-up")),
}


async def describe(digest: str, read_groups: frozenset[str]) -> MissionContent | None:
    found = PACKAGES.get(digest)
    if found is None or read_groups.isdisjoint(found[0]):
        return None
    return found[1]


class Session:
    """A stand-in streaming session that records what it is offered."""

    def __init__(self, sid: str, groups: set[str]) -> None:
        self.id = sid
        self.read_groups = frozenset(groups)
        self.write_groups = frozenset(groups)
        self.got: list[Envelope] = []

    def offer(self, envelope: Envelope) -> None:
        self.got.append(envelope)

    def types(self) -> list[str]:
        return [e.event.type for e in self.got]


def caller(principal: str | None, groups: set[str], uid: str = "", token: str | None = None,
           held: bool = False) -> Caller:
    return Caller(principal=principal, write_groups=frozenset(groups), read_groups=frozenset(groups),
                  client_uid=uid, token=token, uid_held=held)


# Each holds its own uid (bound to its certificate by its stream).
ALICE = caller("alice", {"Red"}, "uid-alice", held=True)
BOB = caller("bob", {"Red"}, "uid-bob", held=True)
CAROL = caller("carol", {"Red"}, "uid-carol", held=True)
EVE = caller("eve", {"Blue"}, "uid-eve", held=True)


@pytest.fixture
def directory() -> Directory:
    return Directory()


@pytest.fixture
async def service(tmp_path: Path, directory: Directory) -> AsyncIterator[MissionService]:
    store = SqliteMissionStore(tmp_path / "missions.db")
    svc = MissionService(store, directory, ManualClock(), describe=describe, hash_secret=lambda p: "h:" + p,
                         check_secret=lambda h, p: h == "h:" + p)
    yield svc
    await store.close()


def connect(directory: Directory, sid: str, uid: str, groups: set[str]) -> Session:
    session = Session(sid, groups)
    directory.add(session)
    directory.bind(sid, uid=uid, callsign=uid.upper())
    return session


def marker(uid: str, mission: str) -> Envelope:
    event = make_event(uid=uid, type="a-h-G", how="h-g-i-g-o", time=1, start=1, stale=10**13,
                       point=Point(1.0, 2.0), detail_xml=f'<marti><dest mission="{mission}"/></marti>'.encode())
    return event


async def test_create_notifies_group_readers_only_and_makes_creator_owner(
    service: MissionService, directory: Directory
) -> None:
    red = connect(directory, "s-red", "uid-bob", {"Red"})
    blue = connect(directory, "s-blue", "uid-eve", {"Blue"})
    mission, sub, created = await service.create(ALICE, CreateRequest(name="Op", description="d"))
    assert created and mission.groups == {"Red"} and mission.creator_principal == "alice"
    assert sub is not None and sub.role is Role.OWNER and sub.client_uid == "uid-alice" and len(sub.token) >= 22
    assert red.types() == ["t-x-m-n"] and blue.got == []
    assert b'name="Op"' in red.got[0].event.detail.xml
    # Creating again as the owner answers the same mission; anyone else is refused.
    again, _, created_again = await service.create(ALICE, CreateRequest(name="Op"))
    assert again.guid == mission.guid and not created_again
    with pytest.raises(MissionConflict):
        await service.create(BOB, CreateRequest(name="Op"))


async def test_missions_outside_the_callers_groups_are_invisible(service: MissionService) -> None:
    await service.create(ALICE, CreateRequest(name="Op"))
    assert [m.name for m in await service.visible(BOB)] == ["Op"]
    assert await service.visible(EVE) == []
    for attempt in (
        service.find(EVE, "Op"),
        service.subscribe(EVE, "Op"),
        service.add(EVE, "Op", [HASH], []),
        service.delete(EVE, "Op"),
        service.subscriptions(EVE, "Op"),
        service.invite(EVE, "Op", InviteType.CLIENT_UID, "x"),
    ):
        with pytest.raises(MissionNotFound):
            await attempt


async def test_group_must_be_writable_by_creator(service: MissionService) -> None:
    with pytest.raises(MissionForbidden):
        await service.create(ALICE, CreateRequest(name="Op", groups=("Blue",)))
    both = caller("both", {"Red", "Blue"}, "uid-both")
    mission, _, _ = await service.create(both, CreateRequest(name="BlueOnly", groups=("Blue",)))
    assert mission.groups == {"Blue"}
    with pytest.raises(MissionNotFound):
        await service.find(ALICE, "BlueOnly")


async def test_roles_gate_writes_and_changes_notify_subscribers(
    service: MissionService, directory: Directory
) -> None:
    await service.create(ALICE, CreateRequest(name="Op", default_role=Role.READONLY))
    bob_session = connect(directory, "s-bob", "uid-bob", {"Red"})
    sub = await service.subscribe(BOB, "Op")
    assert sub.role is Role.READONLY
    with pytest.raises(MissionForbidden):
        await service.add(BOB, "Op", [HASH], [])
    await service.set_role(caller("alice", {"Red"}), "Op", "uid-bob", Role.SUBSCRIBER)
    assert bob_session.types()[-1] == "t-x-m-r"
    changes = await service.add(BOB, "Op", [HASH, HASH.upper()], ["marker-1"])
    assert [(c.type, c.content_hash, c.content_uid) for c in changes] == [
        (ChangeType.ADD_CONTENT, HASH, None), (ChangeType.ADD_CONTENT, None, "marker-1"),
    ]
    notice = bob_session.got[-1].event
    assert notice.type == "t-x-m-c" and HASH.encode() in notice.detail.xml and b"marker-1" in notice.detail.xml
    # Adding the same things again changes nothing and tells nobody.
    before = len(bob_session.got)
    assert await service.add(BOB, "Op", [HASH], ["marker-1"]) == []
    assert len(bob_session.got) == before
    with pytest.raises(MissionForbidden):
        await service.delete(BOB, "Op")
    removed = await service.remove(BOB, "Op", content_hash=HASH)
    assert [c.type for c in removed] == [ChangeType.REMOVE_CONTENT]
    log = await service.changes(BOB, await service.find(BOB, "Op"))
    assert [c.type for c in log] == [ChangeType.CREATE_MISSION, ChangeType.ADD_CONTENT, ChangeType.ADD_CONTENT,
                                     ChangeType.REMOVE_CONTENT]


async def test_content_added_without_a_uid_credits_the_uid_its_upload_named(
    service: MissionService, directory: Directory
) -> None:
    await service.create(ALICE, CreateRequest(name="Op"))
    bob_session = connect(directory, "s-bob", "uid-bob", {"Red"})
    await service.subscribe(BOB, "Op")
    # The owner adds the package over HTTP without naming a creatorUid of its own.
    changes = await service.add(caller("alice", {"Red"}), "Op", [UPLOADED_HASH], [])
    assert [c.creator_uid for c in changes] == ["ANDROID-up"]
    notice = bob_session.got[-1].event
    assert notice.type == "t-x-m-c"
    xml = notice.detail.xml
    assert b"<creatorUid>ANDROID-up</creatorUid>" in xml and b"<creatorUid></creatorUid>" not in xml
    assert b'authorUid="ANDROID-up"' in xml
    # The recorded change (GET .../changes) and the content agree.
    log = await service.changes(BOB, await service.find(BOB, "Op"))
    assert log[-1].type is ChangeType.ADD_CONTENT and log[-1].creator_uid == "ANDROID-up"
    details = await service.details(BOB, await service.find(BOB, "Op"))
    assert [c.creator_uid for c in details.contents] == ["ANDROID-up"]
    # A caller naming its own uid is the change's author; the package keeps its uploader's uid.
    await service.remove(ALICE, "Op", content_hash=UPLOADED_HASH)
    again = await service.add(ALICE, "Op", [UPLOADED_HASH], [])
    assert [c.creator_uid for c in again] == ["uid-alice"]
    assert b"<creatorUid>ANDROID-up</creatorUid>" in bob_session.got[-1].event.detail.xml


async def test_bad_input_is_rejected(service: MissionService) -> None:
    with pytest.raises(InvalidMissionRequest):
        await service.create(ALICE, CreateRequest(name="a/b"))
    await service.create(ALICE, CreateRequest(name="Op"))
    with pytest.raises(InvalidMissionRequest):
        await service.add(ALICE, "Op", ["not-a-hash"], [])
    with pytest.raises(InvalidMissionRequest):
        await service.subscribe(caller("bob", {"Red"}), "Op")


async def test_owner_delete_notifies_subscribers(service: MissionService, directory: Directory) -> None:
    await service.create(ALICE, CreateRequest(name="Op"))
    bob_session = connect(directory, "s-bob", "uid-bob", {"Red"})
    await service.subscribe(BOB, "Op")
    # The owner is recognised by its certificate name even without a client uid.
    await service.delete(caller("alice", {"Red"}), "Op")
    assert bob_session.types()[-1] == "t-x-m-d"
    with pytest.raises(MissionNotFound):
        await service.find(ALICE, "Op")
    mission, _, created = await service.create(BOB, CreateRequest(name="Op"))
    assert created and mission.creator_principal == "bob"


async def test_password_and_invite_only(service: MissionService, directory: Directory) -> None:
    await service.create(ALICE, CreateRequest(name="Secret", password="pw"))
    with pytest.raises(MissionForbidden):
        await service.subscribe(BOB, "Secret", "wrong")
    # Without a subscription a caller only reads a password-protected mission.
    with pytest.raises(MissionForbidden):
        await service.add(BOB, "Secret", [HASH], [])
    assert (await service.subscribe(BOB, "Secret", "pw")).role is Role.SUBSCRIBER

    await service.create(ALICE, CreateRequest(name="Closed", invite_only=True))
    carol_session = connect(directory, "s-carol", "uid-carol", {"Red"})
    blue_session = connect(directory, "s-eve", "uid-eve", {"Blue"})
    with pytest.raises(MissionForbidden):
        await service.subscribe(CAROL, "Closed")
    await service.invite(ALICE, "Closed", InviteType.CLIENT_UID, "uid-carol")
    # An invitation never reaches a client that cannot see the mission.
    await service.invite(ALICE, "Closed", InviteType.CLIENT_UID, "uid-eve")
    assert carol_session.types() == ["t-x-m-i"] and blue_session.got == []
    assert (await service.subscribe(CAROL, "Closed")).role is Role.SUBSCRIBER
    # Granting a role above the default needs the owner's permission.
    with pytest.raises(MissionForbidden):
        await service.invite(CAROL, "Closed", InviteType.GROUP, "Red", Role.OWNER)


async def test_subscription_of_another_principal_is_not_taken_over(service: MissionService) -> None:
    await service.create(ALICE, CreateRequest(name="Op"))
    await service.subscribe(BOB, "Op")
    with pytest.raises(MissionForbidden):
        await service.subscribe(caller("carol", {"Red"}, "uid-bob"), "Op")
    assert not await service.unsubscribe(caller("carol", {"Red"}, "uid-bob"), "Op")
    assert await service.unsubscribe(BOB, "Op")
    assert [s.client_uid for s in await service.subscriptions(ALICE, "Op")] == ["uid-alice"]


async def test_token_identifies_own_subscription(service: MissionService) -> None:
    await service.create(ALICE, CreateRequest(name="Op", default_role=Role.READONLY))
    sub = await service.subscribe(BOB, "Op")
    await service.set_role(ALICE, "Op", "uid-bob", Role.SUBSCRIBER)
    by_token = caller("bob", {"Red"}, token=sub.token)
    assert await service.add(by_token, "Op", [HASH2], [])
    stolen = caller("carol", {"Red"}, token=sub.token)
    with pytest.raises(MissionForbidden):
        await service.add(stolen, "Op", [HASH], [])


async def test_mission_cot_goes_to_subscribers_and_is_recorded(
    service: MissionService, directory: Directory
) -> None:
    await service.create(ALICE, CreateRequest(name="Op"))
    alice = connect(directory, "s-alice", "uid-alice", {"Red"})
    bob = connect(directory, "s-bob", "uid-bob", {"Red"})
    carol = connect(directory, "s-carol", "uid-carol", {"Red"})
    await service.subscribe(BOB, "Op")
    env = Envelope(marker("m-1", "Op"), Origin(session_id="s-alice", groups=frozenset({"Red"}), principal="alice"),
                   5)
    assert service.route_cot(env) == ["Op"]
    # Delivery is the dispatcher's, on every node: the mission resolves to its subscribers here.
    receivers = [s.id for s in service.mission_receivers(env, "Op")]
    assert receivers == [bob.id] and alice.id not in receivers and carol.id not in receivers
    assert await service.record_cot("Op", env)
    assert not await service.record_cot("Op", env), "a uid already in the mission is only refreshed"
    assert bob.types().count("t-x-m-c") == 1
    details = await service.details(ALICE, await service.find(ALICE, "Op"))
    assert [i.uid for i in details.items] == ["m-1"] and b"<marti" not in details.items[0].xml
    # A sender outside the mission's groups, or addressing an unknown mission, routes nowhere.
    eve_env = Envelope(marker("m-2", "Op"), Origin(session_id="s-eve", groups=frozenset({"Blue"}), principal="eve"),
                       6)
    assert service.route_cot(eve_env) == [] and service.mission_receivers(eve_env, "Op") == []
    assert service.route_cot(Envelope(marker("m-3", "Nope"), env.origin, 7)) == []
    assert service.mission_receivers(Envelope(marker("m-3", "Nope"), env.origin, 7), "Nope") == []


async def test_readonly_subscriber_cot_is_not_accepted(service: MissionService, directory: Directory) -> None:
    await service.create(ALICE, CreateRequest(name="Op"))
    connect(directory, "s-bob", "uid-bob", {"Red"})
    await service.subscribe(BOB, "Op")
    await service.set_role(ALICE, "Op", "uid-bob", Role.READONLY)
    env = Envelope(marker("m-1", "Op"), Origin(session_id="s-bob", groups=frozenset({"Red"}), principal="bob"), 5)
    assert service.route_cot(env) == []


async def test_state_survives_a_restart(tmp_path: Path, directory: Directory) -> None:
    store = SqliteMissionStore(tmp_path / "m.db")
    svc = MissionService(store, directory, ManualClock())
    await svc.create(ALICE, CreateRequest(name="Op", password="a good password"))
    await svc.subscribe(BOB, "Op", "a good password")
    await store.close()
    store = SqliteMissionStore(tmp_path / "m.db")
    try:
        svc = MissionService(store, directory, ManualClock())
        mission = await svc.find(BOB, "Op")
        assert mission.password_protected and mission.password_hash and "a good" not in mission.password_hash
        assert svc.subscription_of(BOB, mission) is not None
        assert svc.role_of(BOB, mission) is Role.SUBSCRIBER
    finally:
        await store.close()
