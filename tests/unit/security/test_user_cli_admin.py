"""`rallypoint user role` and `rallypoint user unlock`: each changes the store and is audited."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from rallypoint.cli.users import user_app
from rallypoint.clock import SystemClock
from rallypoint.security.users import Role, User, UserAccounts, UserLocked
from rallypoint.storage.sqlite.users import SqliteUserRecords
from tests.support.accounts import audit_entries, read_user

runner = CliRunner()


def _store(data_dir: Path) -> UserAccounts:
    return UserAccounts(SqliteUserRecords(data_dir / "users.db"), max_failures=2, lockout_seconds=3600)


def _add(data_dir: Path, name: str, *extra: str) -> None:
    result = runner.invoke(user_app, ["add", name, *extra, "--data-dir", str(data_dir)], input="pw-long-enough\n")
    assert result.exit_code == 0, result.output


def test_role_changes_and_is_audited(tmp_path: Path) -> None:
    _add(tmp_path, "Alice")
    result = runner.invoke(user_app, ["role", "alice", "approver", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    user = read_user(tmp_path, "alice")
    assert user is not None and user.role is Role.APPROVER
    last = audit_entries(tmp_path)[-1]
    assert (last.action, last.target, last.detail) == ("user.role", "Alice", {"role": "approver", "was": "member"})


def test_role_refuses_unknown_roles_and_users(tmp_path: Path) -> None:
    _add(tmp_path, "bob")
    bad_role = runner.invoke(user_app, ["role", "bob", "root", "--data-dir", str(tmp_path)])
    assert bad_role.exit_code == 2
    missing = runner.invoke(user_app, ["role", "nobody", "admin", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "refused" in missing.output
    user = read_user(tmp_path, "bob")
    assert user is not None and user.role is Role.MEMBER
    assert [e.action for e in audit_entries(tmp_path)] == ["user.add"]


def test_unlock_lets_a_locked_out_user_log_in_again(tmp_path: Path) -> None:
    _add(tmp_path, "carol", "--password-stdin")

    async def fail_twice_then_try() -> None:
        store = _store(tmp_path)
        try:
            now = SystemClock().now_ms()
            for _ in range(2):
                try:
                    await store.authenticate("carol", "wrong", now_ms=now)
                except Exception:
                    pass
            try:
                await store.authenticate("carol", "pw-long-enough", now_ms=now)
            except UserLocked:
                return
            raise AssertionError("the account should be locked")
        finally:
            await store.close()

    asyncio.run(fail_twice_then_try())
    result = runner.invoke(user_app, ["unlock", "CAROL", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "unlocked" in result.output

    async def login() -> User:
        store = _store(tmp_path)
        try:
            return await store.authenticate("carol", "pw-long-enough", now_ms=SystemClock().now_ms())
        finally:
            await store.close()

    assert asyncio.run(login()).name == "carol"
    last = [e for e in audit_entries(tmp_path) if e.action == "user.unlock"]
    assert [(e.target, e.detail["was_locked"]) for e in last] == [("carol", "yes")]


def test_unlock_of_an_unlocked_or_unknown_account(tmp_path: Path) -> None:
    _add(tmp_path, "dave")
    result = runner.invoke(user_app, ["unlock", "dave", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "was not locked" in result.output
    missing = runner.invoke(user_app, ["unlock", "nobody", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1
    assert [(e.action, e.detail.get("was_locked")) for e in audit_entries(tmp_path)] == [
        ("user.add", None), ("user.unlock", "no"),
    ]
