"""UserAccounts: accounts, groups, change notification and password authentication."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from rallypoint.clock import ManualClock
from rallypoint.security.users import (
    ANON_GROUP,
    AuthFailed,
    BadPassword,
    Role,
    UnknownUser,
    UserAccounts,
    UserDisabled,
    UserError,
    UserExists,
    UserLocked,
    UserNotFound,
)
from rallypoint.storage.sqlite.users import SqliteUserRecords

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
T0 = 1_700_000_000_000
# A password that meets the account password rules.
PW = "orbit lantern 42"


@pytest.fixture
def changes() -> list[str]:
    return []


@pytest.fixture
async def store(tmp_path: Path, changes: list[str]) -> AsyncIterator[UserAccounts]:
    s = UserAccounts(
        SqliteUserRecords(tmp_path / "users.db"), on_change=changes.append, clock=ManualClock(T0), hasher=FAST,
        max_failures=3, lockout_seconds=60,
    )
    yield s
    await s.close()


async def test_add_and_get_round_trip(store: UserAccounts) -> None:
    added = await store.add(
        "alice", password="orbit lantern 42", role=Role.APPROVER, groups_in=["Cyan"], groups_out=["Cyan", "Red"]
    )
    got = await store.get("alice")
    assert got == added
    assert got is not None
    assert got.role is Role.APPROVER
    assert got.groups_in == frozenset({"Cyan"})
    assert got.groups_out == frozenset({"Cyan", "Red"})
    assert got.has_password and not got.disabled
    assert got.created_ms == got.updated_ms == T0
    assert await store.get("bob") is None


async def test_password_is_stored_only_as_argon2id(store: UserAccounts, tmp_path: Path) -> None:
    await store.add("alice", password="s3cret-value", role=Role.MEMBER)
    await store.close()
    raw = (tmp_path / "users.db").read_bytes()
    assert b"s3cret-value" not in raw
    with sqlite3.connect(tmp_path / "users.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE name = 'alice'").fetchone()
    assert stored.startswith("$argon2id$")


async def test_names_are_unique_regardless_of_case(store: UserAccounts) -> None:
    await store.add("alice", password=None)
    with pytest.raises(UserExists):
        await store.add("alice", password=None)
    with pytest.raises(UserExists):
        await store.add("ALICE", password="other lantern 7")
    assert [u.name for u in await store.list()] == ["alice"]


@pytest.mark.parametrize(
    "name",
    ["", "../etc/passwd", "a/b", "-rf", ".hidden", "a..b", "x" * 65, "bob\n", "bob\x00", "al ice", "<script>", "é"],
)
async def test_hostile_names_are_refused(store: UserAccounts, name: str) -> None:
    with pytest.raises(UserError) as info:
        await store.add(name, password=None)
    assert info.value.reason == "bad_name"
    assert await store.list() == []


@pytest.mark.parametrize("group", ["", " lead", "tab\there", "x" * 65, "nl\n"])
async def test_bad_group_names_are_refused(store: UserAccounts, group: str) -> None:
    with pytest.raises(UserError) as info:
        await store.add("alice", password=None, groups_in=[group])
    assert info.value.reason == "bad_group"


async def test_list_is_sorted(store: UserAccounts) -> None:
    for name in ("carol", "alice", "bob"):
        await store.add(name, password=None)
    assert [u.name for u in await store.list()] == ["alice", "bob", "carol"]


async def test_no_groups_means_anon_both_ways(store: UserAccounts) -> None:
    await store.add("alice", password=None)
    await store.add("bob", password=None, groups_in=["Cyan"])
    anon = frozenset({ANON_GROUP})
    assert await store.groups_of("alice") == (anon, anon)
    assert await store.groups_of("bob") == (frozenset({"Cyan"}), frozenset())
    with pytest.raises(UserNotFound):
        await store.groups_of("nobody")


async def test_every_change_notifies_with_the_name(store: UserAccounts, changes: list[str]) -> None:
    await store.add("alice", password=None)
    await store.set_groups("alice", groups_in=["Red"], groups_out=["Red", "Blue"])
    await store.set_role("alice", Role.ADMIN)
    await store.set_disabled("alice", True)
    await store.set_password("alice", PW)
    assert changes == ["alice"] * 5
    user = await store.get("alice")
    assert user is not None
    assert (user.groups_in, user.groups_out) == (frozenset({"Red"}), frozenset({"Red", "Blue"}))
    assert user.role is Role.ADMIN and user.disabled and user.has_password


async def test_on_change_runs_on_the_event_loop_thread(tmp_path: Path) -> None:
    import threading

    threads: list[threading.Thread] = []
    s = UserAccounts(SqliteUserRecords(tmp_path / "u.db"), hasher=FAST,
                     on_change=lambda _n: threads.append(threading.current_thread()))
    try:
        await s.add("alice", password=PW)
        await s.set_groups("alice", groups_in=["A"], groups_out=["A"])
    finally:
        await s.close()
    assert threads == [threading.main_thread()] * 2


async def test_changes_to_unknown_users_fail_without_notifying(store: UserAccounts, changes: list[str]) -> None:
    with pytest.raises(UserNotFound):
        await store.set_disabled("ghost", True)
    with pytest.raises(UserNotFound):
        await store.set_groups("ghost", groups_in=[], groups_out=[])
    assert changes == []


async def test_authenticate_ok(store: UserAccounts) -> None:
    await store.add("alice", password=PW, groups_in=["A"])
    user = await store.authenticate("alice", PW, now_ms=T0)
    assert user.name == "alice" and user.groups_in == frozenset({"A"})


async def test_unknown_user(store: UserAccounts) -> None:
    with pytest.raises(UnknownUser) as info:
        await store.authenticate("ghost", PW, now_ms=T0)
    assert info.value.reason == "unknown_user"


async def test_bad_password_does_not_reveal_the_password(store: UserAccounts) -> None:
    await store.add("alice", password=PW)
    with pytest.raises(BadPassword) as info:
        await store.authenticate("alice", "guess-123", now_ms=T0)
    assert info.value.reason == "bad_password"
    assert "guess-123" not in str(info.value)


async def test_certificate_only_account_cannot_use_a_password(store: UserAccounts) -> None:
    await store.add("alice", password=None)
    with pytest.raises(BadPassword):
        await store.authenticate("alice", "", now_ms=T0)
    user = await store.get("alice")
    assert user is not None and not user.has_password


async def test_disabled_user_is_refused_even_with_the_right_password(store: UserAccounts) -> None:
    await store.add("alice", password=PW)
    await store.set_disabled("alice", True)
    with pytest.raises(UserDisabled) as info:
        await store.authenticate("alice", PW, now_ms=T0)
    assert info.value.reason == "disabled"
    await store.set_disabled("alice", False)
    assert (await store.authenticate("alice", PW, now_ms=T0)).name == "alice"


async def test_lockout_after_consecutive_failures_then_expiry(store: UserAccounts) -> None:
    await store.add("alice", password=PW)
    for _ in range(3):
        with pytest.raises(BadPassword):
            await store.authenticate("alice", "wrong", now_ms=T0)
    # Locked: even the right password is refused until the lock expires.
    with pytest.raises(UserLocked) as info:
        await store.authenticate("alice", PW, now_ms=T0 + 1000)
    assert info.value.reason == "locked"
    assert info.value.locked_until_ms == T0 + 60_000
    with pytest.raises(UserLocked):
        await store.authenticate("alice", PW, now_ms=T0 + 59_999)
    user = await store.authenticate("alice", PW, now_ms=T0 + 60_000)
    assert user.locked_until_ms is None and user.failed_logins == 0


async def test_success_resets_the_failure_counter(store: UserAccounts) -> None:
    await store.add("alice", password=PW)
    for _ in range(2):
        with pytest.raises(BadPassword):
            await store.authenticate("alice", "wrong", now_ms=T0)
    stored = await store.get("alice")
    assert stored is not None and stored.failed_logins == 2
    await store.authenticate("alice", PW, now_ms=T0)
    stored = await store.get("alice")
    assert stored is not None and stored.failed_logins == 0
    # Two more failures do not lock: the count started again from zero.
    for _ in range(2):
        with pytest.raises(BadPassword):
            await store.authenticate("alice", "wrong", now_ms=T0)
    assert (await store.authenticate("alice", PW, now_ms=T0)).name == "alice"


async def test_concurrent_failures_all_count(store: UserAccounts) -> None:
    await store.add("alice", password=PW)
    results = await asyncio.gather(
        *(store.authenticate("alice", "wrong", now_ms=T0) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, BadPassword) for r in results)
    with pytest.raises(UserLocked):
        await store.authenticate("alice", PW, now_ms=T0)


async def test_lockout_does_not_count_as_a_change(store: UserAccounts, changes: list[str]) -> None:
    await store.add("alice", password=PW)
    changes.clear()
    for _ in range(3):
        with pytest.raises(AuthFailed):
            await store.authenticate("alice", "wrong", now_ms=T0)
    assert changes == []


async def test_login_upgrades_a_weak_hash(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    weak = UserAccounts(SqliteUserRecords(path), hasher=FAST)
    await weak.add("alice", password=PW)
    await weak.close()
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    s = UserAccounts(SqliteUserRecords(path), hasher=stronger)
    try:
        await s.authenticate("alice", PW, now_ms=T0)
    finally:
        await s.close()
    with sqlite3.connect(path) as db:
        (stored,) = db.execute("SELECT password_hash FROM users").fetchone()
    assert "m=16,t=2,p=1" in stored


async def test_set_password_replaces_and_can_remove(store: UserAccounts) -> None:
    await store.add("alice", password="old lantern grove")
    await store.set_password("alice", "new lantern grove")
    with pytest.raises(BadPassword):
        await store.authenticate("alice", "old lantern grove", now_ms=T0)
    assert (await store.authenticate("alice", "new lantern grove", now_ms=T0)).name == "alice"
    await store.set_password("alice", None)
    with pytest.raises(BadPassword):
        await store.authenticate("alice", "new lantern grove", now_ms=T0)


async def test_empty_password_is_refused_at_add(store: UserAccounts) -> None:
    with pytest.raises(UserError):
        await store.add("alice", password="")
    assert await store.get("alice") is None


async def test_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    s = UserAccounts(SqliteUserRecords(path), hasher=FAST)
    await s.add("alice", password=PW, groups_in=["A"], groups_out=["B"], role=Role.ADMIN)
    await s.close()
    s2 = UserAccounts(SqliteUserRecords(path), hasher=FAST)
    try:
        user = await s2.authenticate("alice", PW, now_ms=T0)
    finally:
        await s2.close()
    assert (user.role, user.groups_in, user.groups_out) == (Role.ADMIN, frozenset({"A"}), frozenset({"B"}))


async def test_unlock_lifts_a_lock_at_once(store: UserAccounts, changes: list[str]) -> None:
    await store.add("Alice", password=PW)
    for _ in range(3):
        with pytest.raises(BadPassword):
            await store.authenticate("alice", "wrong", now_ms=T0)
    with pytest.raises(UserLocked):
        await store.authenticate("alice", PW, now_ms=T0 + 1)
    changes.clear()
    unlocked = await store.unlock("ALICE")
    assert unlocked.name == "Alice" and unlocked.locked_until_ms is None and unlocked.failed_logins == 0
    stored = await store.get("alice")
    assert stored is not None and stored.locked_until_ms is None
    assert changes == []  # lock bookkeeping changes nothing a session may see
    assert (await store.authenticate("alice", PW, now_ms=T0 + 2)).name == "Alice"
    with pytest.raises(UserNotFound):
        await store.unlock("nobody")
