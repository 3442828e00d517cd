"""MissionRecords contract: missions, their contents, uids, members and change log, on every backend."""

from __future__ import annotations

from rallypoint.model.mission import (
    ChangeType,
    Invitation,
    InviteType,
    Mission,
    MissionChange,
    MissionContent,
    MissionItem,
    Role,
    Subscription,
)
from rallypoint.storage.base.missions import MissionRecords


def mission(name: str, guid: str, groups: frozenset[str] = frozenset({"Blue", "A,B"})) -> Mission:
    return Mission(name=name, guid=guid, create_time=1000, creator_uid="ANDROID-1", creator_principal="alice",
                   groups=groups, description="d", keywords=("k1", "k2"), default_role=Role.SUBSCRIBER)


def change(kind: ChangeType, name: str, t: int, **kw: str) -> MissionChange:
    return MissionChange(type=kind, mission=name, creator_uid="ANDROID-1", timestamp=t, **kw)  # type: ignore[arg-type]


async def test_names_are_unique_and_missions_are_found_by_name_and_guid(mission_records: MissionRecords) -> None:
    op = mission("Op", "g1")
    assert await mission_records.create(op, change(ChangeType.CREATE_MISSION, "Op", 1000))
    assert not await mission_records.create(mission("Op", "g2"), change(ChangeType.CREATE_MISSION, "Op", 1001))
    assert await mission_records.create(mission("Alpha", "g3"), change(ChangeType.CREATE_MISSION, "Alpha", 1002))
    assert await mission_records.get("Op") == op
    assert await mission_records.get("op") is None
    assert await mission_records.by_guid("g1") == op
    assert [m.name for m in await mission_records.all()] == ["Alpha", "Op"]
    assert await mission_records.set_keywords("g1", ("new",))
    got = await mission_records.get("Op")
    assert got is not None and got.keywords == ("new",) and got.groups == frozenset({"Blue", "A,B"})
    assert not await mission_records.set_keywords("nope", ("x",))


async def test_contents_and_items_belong_to_their_mission_and_log_changes(mission_records: MissionRecords) -> None:
    await mission_records.create(mission("Op", "g1"), change(ChangeType.CREATE_MISSION, "Op", 1000))
    a = MissionContent(hash="a" * 64, creator_uid="ANDROID-1", timestamp=2000, name="a.zip", size=3,
                       keywords=("x",))
    b = MissionContent(hash="b" * 64, creator_uid="ANDROID-1", timestamp=2001, name="b.zip")
    assert await mission_records.add_contents("g1", [a, b], "ANDROID-2") == [a, b]
    assert await mission_records.add_contents("g1", [a], "ANDROID-2") == []
    assert await mission_records.add_contents("nope", [a], "ANDROID-2") == []
    assert await mission_records.contents("g1") == [a, b]
    assert await mission_records.remove_content("g1", change(ChangeType.REMOVE_CONTENT, "Op", 3000,
                                                             content_hash="a" * 64))
    assert not await mission_records.remove_content("g1", change(ChangeType.REMOVE_CONTENT, "Op", 3001,
                                                                 content_hash="a" * 64))
    assert await mission_records.contents("g1") == [b]
    item = MissionItem(uid="u1", creator_uid="ANDROID-1", timestamp=2500, cot_type="a-f-G", callsign="ONE",
                       xml=b"<event uid='u1'/>")
    assert await mission_records.put_item("g1", item, None)
    newer = MissionItem(uid="u1", creator_uid="ANDROID-1", timestamp=2600, cot_type="a-h-G", callsign="ONE",
                        xml=b"<event uid='u1' v='2'/>")
    assert not await mission_records.put_item("g1", newer, None)
    (kept,) = await mission_records.items("g1")
    assert (kept.timestamp, kept.cot_type, kept.xml) == (2500, "a-h-G", b"<event uid='u1' v='2'/>")
    assert not await mission_records.put_item("nope", item, None)
    kinds = [(c.type, c.content_hash) for c in await mission_records.changes("g1")]
    assert kinds == [(ChangeType.CREATE_MISSION, None), (ChangeType.ADD_CONTENT, "a" * 64),
                     (ChangeType.ADD_CONTENT, "b" * 64), (ChangeType.REMOVE_CONTENT, "a" * 64)]
    window = await mission_records.changes("g1", since_ms=2000, until_ms=2001, limit=10)
    assert [c.content_hash for c in window] == ["a" * 64, "b" * 64]
    assert len(await mission_records.changes("g1", limit=2)) == 2


async def test_members_and_invitations(mission_records: MissionRecords) -> None:
    await mission_records.create(mission("Op", "g1"), change(ChangeType.CREATE_MISSION, "Op", 1000))
    sub = Subscription(mission="Op", client_uid="ANDROID-2", principal="bob", token="t1", role=Role.SUBSCRIBER,
                       create_time=1500)
    await mission_records.subscribe("g1", sub)
    renewed = Subscription(mission="Op", client_uid="ANDROID-2", principal="bob", token="t2", role=Role.SUBSCRIBER,
                           create_time=1500)
    await mission_records.subscribe("g1", renewed)
    assert await mission_records.subscriptions("g1") == [renewed]
    assert await mission_records.set_role("g1", "ANDROID-2", Role.OWNER)
    assert not await mission_records.set_role("g1", "ANDROID-9", Role.OWNER)
    (owner,) = await mission_records.subscriptions()
    assert owner.role == Role.OWNER
    invite = Invitation(mission="Op", type=InviteType.CALLSIGN, invitee="BRAVO", creator_uid="ANDROID-1",
                        role=Role.READONLY, create_time=1600)
    await mission_records.invite("g1", invite)
    assert await mission_records.invitations("g1") == [invite]
    assert await mission_records.unsubscribe("g1", "ANDROID-2")
    assert not await mission_records.unsubscribe("g1", "ANDROID-2")


async def test_deleting_a_mission_takes_its_rows_but_keeps_its_change_log(mission_records: MissionRecords) -> None:
    op = mission("Op", "g1")
    await mission_records.create(op, change(ChangeType.CREATE_MISSION, "Op", 1000))
    await mission_records.put_item("g1", MissionItem(uid="u1", creator_uid="x", timestamp=1), None)
    await mission_records.subscribe("g1", Subscription(mission="Op", client_uid="c", principal=None, token="t",
                                                       role=Role.SUBSCRIBER, create_time=1))
    assert await mission_records.delete(op, change(ChangeType.DELETE_MISSION, "Op", 5000))
    assert not await mission_records.delete(op, change(ChangeType.DELETE_MISSION, "Op", 5001))
    assert await mission_records.get("Op") is None
    assert await mission_records.items("g1") == [] and await mission_records.subscriptions("g1") == []
    assert [c.type for c in await mission_records.changes("g1")] == [ChangeType.CREATE_MISSION,
                                                                   ChangeType.DELETE_MISSION]
    assert await mission_records.create(mission("Op", "g2"), change(ChangeType.CREATE_MISSION, "Op", 6000))
    assert [c.type for c in await mission_records.changes("g2")] == [ChangeType.CREATE_MISSION]
