"""Upkeep tasks run on their own small dependencies and a manual clock."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.model.cot import CotEvent, Point
from rallypoint.node.upkeep import AccountSync, SessionSweep, load_picture
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import encode_event, make_event
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.security.accounts import AccountCache
from rallypoint.security.users import UserAccounts
from rallypoint.services.presence import Presence
from rallypoint.storage.base import StoredEvent
from rallypoint.storage.memory import MemoryEventStore
from rallypoint.storage.sqlite.users import SqliteUserRecords
from rallypoint.transport.context import SessionSet

NOW = 1_700_000_000_000


@dataclass
class FakeSession:
    """A streaming session reduced to what the upkeep reads and the calls it makes."""

    id: str
    principal: str | None = None
    cert_serial: int | None = None
    last_rx: float = 0.0
    partial_since: float | None = None
    paused_since: float | None = None
    inactive_groups: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    closed: list[tuple[str, bool]] = field(default_factory=list)
    regrouped: list[tuple[frozenset[str], frozenset[str]]] = field(default_factory=list)

    def regroup(self, write_groups: frozenset[str], read_groups: frozenset[str]) -> bool:
        self.regrouped.append((write_groups, read_groups))
        return True

    def close(self, reason: str, *, abort: bool = False) -> None:
        self.closed.append((reason, abort))

    def flush_and_close(self) -> None:
        self.close("shutdown")

    def statistics(self) -> dict[str, int]:
        return {}


def _marker(uid: str, stale_ms: int) -> CotEvent:
    return make_event(uid=uid, type="b-m-p-s-m", how="h-g-i-g-o", time=NOW, start=NOW, stale=stale_ms,
                      point=Point(1.0, 2.0, 0.0))


def _sessions(*sessions: FakeSession) -> SessionSet:
    found = SessionSet()
    for session in sessions:
        found.add(session)
    return found


def test_sweep_expires_items_and_closes_idle_stalled_and_unfinished_sessions() -> None:
    clock = ManualClock(NOW)
    presence = Presence(Directory())
    presence.items["soon"] = Envelope(_marker("soon", NOW + 30_000), Origin("s-x", frozenset({"A"})), NOW)
    presence.items["later"] = Envelope(_marker("later", NOW + 3_600_000), Origin("s-x", frozenset({"A"})), NOW)
    idle = FakeSession("idle", last_rx=0.0)
    stalled = FakeSession("stalled")
    unfinished = FakeSession("unfinished")
    fine = FakeSession("fine")
    task = SessionSweep(presence, _sessions(idle, stalled, unfinished, fine), clock, idle_timeout_s=60.0,
                        frame_timeout_s=20.0, slow_receiver_timeout_s=10.0)
    assert task.interval() == 2.5

    clock.advance(61)
    for session in (stalled, unfinished, fine):
        session.last_rx = clock.monotonic()
    stalled.paused_since = 45.0
    unfinished.partial_since = 50.0
    task.once()

    assert set(presence.items) == {"later"}
    assert idle.closed == [("idle_timeout", False)]
    assert stalled.closed == [("slow_receiver", True)]
    assert unfinished.closed == [] and fine.closed == []

    clock.advance(10)
    task.once()
    assert unfinished.closed == [("slow_frame", True)]
    assert fine.closed == []


def test_sweep_without_timeouts_only_expires_items() -> None:
    clock = ManualClock(NOW)
    presence = Presence(Directory())
    quiet = FakeSession("quiet", last_rx=0.0)
    task = SessionSweep(presence, _sessions(quiet), clock, idle_timeout_s=0.0, frame_timeout_s=0.0,
                        slow_receiver_timeout_s=0.0)
    assert task.interval() == 2.5
    clock.advance(3600)
    task.once()
    assert quiet.closed == []


@pytest.fixture(name="users")
async def users_fixture(tmp_path: Path) -> AsyncIterator[UserAccounts]:
    users = UserAccounts(SqliteUserRecords(tmp_path / "users.db"), clock=ManualClock(NOW))
    yield users
    await users.close()


async def test_account_changes_disable_and_regroup_live_sessions(users: UserAccounts) -> None:
    await users.add("alice", password=None, groups_in={"Red"}, groups_out={"Red"})
    await users.add("bob", password=None, groups_in={"Blue"}, groups_out={"Blue"})
    accounts = AccountCache()
    alice = FakeSession("s-alice", principal="alice", inactive_groups=(frozenset(), frozenset({"Green"})))
    bob = FakeSession("s-bob", principal="bob")
    anonymous = FakeSession("s-anon")
    sync = AccountSync(users, accounts, _sessions(alice, bob, anonymous))
    stamp = await sync.load()
    assert accounts.access_for("bob") is not None

    await users.set_disabled("bob", True)
    await users.set_groups("alice", groups_in={"Red", "Green"}, groups_out={"Green"})
    assert await users.stamp() != stamp
    await sync.apply()

    assert accounts.access_for("bob") is None
    assert bob.closed == [("disabled", True)]
    # Groups the client switched off stay off.
    assert alice.regrouped == [(frozenset({"Red", "Green"}), frozenset())]
    assert alice.closed == []
    assert anonymous.closed == [] and anonymous.regrouped == []


async def test_load_picture_restores_live_items_and_skips_unreadable_rows(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(NOW)
    store = MemoryEventStore()

    def row(uid: str, stale_ms: int, xml: bytes | None = None) -> StoredEvent:
        return StoredEvent(
            uid=uid, type="b-m-p-s-m", how="h-g-i-g-o", time=NOW, start=NOW, stale=stale_ms, lat=1.0, lon=2.0, hae=0.0,
            callsign=None, groups=frozenset({"Red"}), team=None, sender="s-1",
            xml=xml if xml is not None else encode_event(_marker(uid, stale_ms)), received=NOW, picture=True,
        )

    await store.append([
        row("live", NOW + 60_000), row("gone", NOW - 1), row("broken", NOW + 60_000, b"<event"),
    ])
    presence = Presence(Directory())
    with caplog.at_level(logging.ERROR, logger="rallypoint"):
        await load_picture(store, presence, clock, Limits(max_event_bytes=64 * 1024))

    assert set(presence.items) == {"live"}
    restored = presence.items["live"]
    assert restored.origin.session_id == "storage" and restored.origin.groups == frozenset({"Red"})
    assert any(r.getMessage() == "cannot reload stored event" for r in caplog.records)
