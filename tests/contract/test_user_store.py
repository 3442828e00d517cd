"""UserRecords contract: what ``security.users`` relies on, on every backend."""

from __future__ import annotations

import asyncio

import pytest

from rallypoint.storage.base.users import UserRecord, UserRecords


def account(name: str, *, groups_in: frozenset[str] = frozenset({"A"}), groups_out: frozenset[str] = frozenset({"A"}),
            password_hash: str | None = "$argon2id$x", t: int = 1000) -> UserRecord:
    return UserRecord(name=name, role="member", groups_in=groups_in, groups_out=groups_out,
                      password_hash=password_hash, disabled=False, created_ms=t, updated_ms=t, failed_logins=0,
                      locked_until_ms=None)


async def test_names_are_unique_without_regard_to_case_and_keep_their_spelling(user_records: UserRecords) -> None:
    assert await user_records.insert(account("Alice"))
    assert not await user_records.insert(account("alice", password_hash=None))
    got = await user_records.get("ALICE")
    assert got == account("Alice")
    assert await user_records.get("bob") is None


async def test_groups_are_frozensets_of_exact_names(user_records: UserRecords) -> None:
    odd = frozenset({"Blue Team", "a,b", "Ωmega", "x\"y"})
    await user_records.insert(account("carol", groups_in=odd, groups_out=frozenset()))
    got = await user_records.get("carol")
    assert got is not None
    assert got.groups_in == odd and got.groups_out == frozenset()
    assert isinstance(got.groups_in, frozenset)


async def test_list_is_ordered_by_name(user_records: UserRecords) -> None:
    for name in ("charlie", "Alice", "bob"):
        await user_records.insert(account(name))
    assert [r.name for r in await user_records.list()] == ["Alice", "bob", "charlie"]


async def test_update_sets_fields_and_time(user_records: UserRecords) -> None:
    await user_records.insert(account("alice"))
    got = await user_records.update(
        "ALICE", {"role": "admin", "groups_in": frozenset({"B", "C"}), "disabled": True, "password_hash": None},
        now_ms=2000,
    )
    assert got is not None
    assert (got.name, got.role, got.groups_in, got.groups_out, got.disabled, got.password_hash, got.updated_ms) == (
        "alice", "admin", frozenset({"B", "C"}), frozenset({"A"}), True, None, 2000)
    assert await user_records.get("alice") == got
    assert await user_records.update("nobody", {"role": "admin"}, now_ms=2000) is None
    with pytest.raises(ValueError, match="not updatable"):
        await user_records.update("alice", {"name": "eve"}, now_ms=2000)


async def test_failures_lock_at_the_limit_and_restart_the_count(user_records: UserRecords) -> None:
    await user_records.insert(account("alice"))
    first = await user_records.record_failure("alice", now_ms=10, max_failures=2, lock_ms=500)
    assert first is not None and (first.failed_logins, first.locked_until_ms) == (1, None)
    second = await user_records.record_failure("alice", now_ms=20, max_failures=2, lock_ms=500)
    assert second is not None and (second.failed_logins, second.locked_until_ms) == (0, 520)
    assert await user_records.record_failure("nobody", now_ms=20, max_failures=2, lock_ms=500) is None
    await user_records.record_success("alice")
    after = await user_records.get("alice")
    assert after is not None and (after.failed_logins, after.locked_until_ms) == (0, None)
    await user_records.record_success("alice", password_hash="$argon2id$new")
    rehashed = await user_records.get("alice")
    assert rehashed is not None and rehashed.password_hash == "$argon2id$new"


async def test_concurrent_failures_all_count(user_records: UserRecords) -> None:
    await user_records.insert(account("alice"))
    await asyncio.gather(*(
        user_records.record_failure("alice", now_ms=10, max_failures=100, lock_ms=500) for _ in range(8)
    ))
    got = await user_records.get("alice")
    assert got is not None and got.failed_logins == 8


async def test_stamp_changes_with_every_account_change_but_not_with_lock_bookkeeping(
    user_records: UserRecords,
) -> None:
    empty = await user_records.stamp()
    await user_records.insert(account("alice"))
    added = await user_records.stamp()
    assert added != empty
    await user_records.record_failure("alice", now_ms=10, max_failures=5, lock_ms=500)
    await user_records.record_success("alice")
    assert await user_records.stamp() == added
    await user_records.update("alice", {"groups_out": frozenset({"B"})}, now_ms=20)
    changed = await user_records.stamp()
    assert changed != added
    await user_records.update("alice", {"disabled": True}, now_ms=20)
    assert await user_records.stamp() not in (added, changed)
