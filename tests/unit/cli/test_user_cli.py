"""`rallypoint user ...`: accounts from the command line, each change audited."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from rallypoint.cli.users import user_app
from rallypoint.security.users import BadPassword, Role, User, UserAccounts, UserDisabled
from rallypoint.storage.sqlite.users import SqliteUserRecords
from tests.support.accounts import audit_entries, read_user

runner = CliRunner()
T0 = 1_700_000_000_000


def _login(data_dir: Path, name: str, password: str) -> User:
    async def go() -> User:
        store = UserAccounts(SqliteUserRecords(data_dir / "users.db"))
        try:
            return await store.authenticate(name, password, now_ms=T0)
        finally:
            await store.close()

    return asyncio.run(go())


def test_add_with_password_from_stdin(tmp_path: Path) -> None:
    result = runner.invoke(
        user_app,
        ["add", "alice", "--group", "Cyan", "--out-group", "Red", "--role", "admin", "--password-stdin",
         "--data-dir", str(tmp_path)],
        input="hunter2-long\n",
    )
    assert result.exit_code == 0, result.output
    assert "hunter2-long" not in result.output
    user = _login(tmp_path, "alice", "hunter2-long")
    assert user.role is Role.ADMIN
    assert user.groups_in == frozenset({"Cyan"})
    assert user.groups_out == frozenset({"Cyan", "Red"})
    [entry] = audit_entries(tmp_path)
    assert entry.action == "user.add" and entry.target == "alice"
    assert entry.actor.startswith("cli:")
    assert entry.detail == {"role": "admin", "groups_in": "Cyan", "groups_out": "Cyan,Red", "password": "set"}
    assert "hunter2-long" not in (tmp_path / "audit.db").read_bytes().decode("latin-1")


def test_add_without_password_is_certificate_only(tmp_path: Path) -> None:
    result = runner.invoke(user_app, ["add", "bob", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    user = read_user(tmp_path, "bob")
    assert user is not None and not user.has_password and user.role is Role.MEMBER
    assert audit_entries(tmp_path)[0].detail["password"] == "none"


def test_add_twice_and_hostile_names_fail(tmp_path: Path) -> None:
    assert runner.invoke(user_app, ["add", "bob", "--data-dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(user_app, ["add", "bob", "--data-dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "already exists" in again.output
    hostile = runner.invoke(user_app, ["add", "../../etc", "--data-dir", str(tmp_path)])
    assert hostile.exit_code == 1
    assert len(audit_entries(tmp_path)) == 1


def test_password_stdin_requires_a_line(tmp_path: Path) -> None:
    result = runner.invoke(user_app, ["add", "bob", "--password-stdin", "--data-dir", str(tmp_path)], input="")
    assert result.exit_code == 2
    assert read_user(tmp_path, "bob") is None


def test_disable_enable_passwd(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert runner.invoke(user_app, ["add", "carol", "--password-stdin", *d], input="first lantern 11\n").exit_code == 0
    assert runner.invoke(user_app, ["disable", "carol", *d]).exit_code == 0
    try:
        _login(tmp_path, "carol", "first lantern 11")
        raise AssertionError("disabled user logged in")
    except UserDisabled:
        pass
    assert runner.invoke(user_app, ["enable", "carol", *d]).exit_code == 0
    assert runner.invoke(user_app, ["passwd", "carol", "--password-stdin", *d], input="second oak 21\n").exit_code == 0
    assert _login(tmp_path, "carol", "second oak 21").name == "carol"
    try:
        _login(tmp_path, "carol", "first lantern 11")
        raise AssertionError("old password still works")
    except BadPassword:
        pass
    assert [e.action for e in audit_entries(tmp_path)] == ["user.add", "user.disable", "user.enable", "user.passwd"]


def test_passwd_refuses_without_stdin_flag(tmp_path: Path) -> None:
    runner.invoke(user_app, ["add", "carol", "--data-dir", str(tmp_path)])
    result = runner.invoke(user_app, ["passwd", "carol", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert [e.action for e in audit_entries(tmp_path)] == ["user.add"]


def test_changes_to_unknown_user_fail(tmp_path: Path) -> None:
    result = runner.invoke(user_app, ["disable", "ghost", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "ghost" in result.output


def test_groups_replaces_only_given_directions(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    runner.invoke(user_app, ["add", "dave", "--in-group", "A", "--out-group", "B", *d])
    result = runner.invoke(user_app, ["groups", "dave", "--in", "C", "--in", "D", *d])
    assert result.exit_code == 0, result.output
    user = read_user(tmp_path, "dave")
    assert user is not None
    assert (user.groups_in, user.groups_out) == (frozenset({"C", "D"}), frozenset({"B"}))
    entry = audit_entries(tmp_path)[-1]
    assert entry.action == "group.change"
    assert entry.detail == {"groups_in": "C,D", "groups_out": "B", "was_in": "A", "was_out": "B"}
    assert runner.invoke(user_app, ["groups", "dave", *d]).exit_code == 2


def test_list_json(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    runner.invoke(user_app, ["add", "zed", "--password-stdin", *d], input="zed lantern 33\n")
    runner.invoke(user_app, ["add", "amy", "--group", "Cyan", *d])
    runner.invoke(user_app, ["disable", "zed", *d])
    result = runner.invoke(user_app, ["list", "--json", *d])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["amy", "zed"]
    assert rows[0]["groups_in"] == ["Cyan"] and rows[0]["has_password"] is False
    assert rows[1]["disabled"] is True and rows[1]["has_password"] is True
    assert "argon2" not in result.stdout


def test_list_table_shows_anon_for_groupless_users(tmp_path: Path) -> None:
    runner.invoke(user_app, ["add", "amy", "--data-dir", str(tmp_path)])
    result = runner.invoke(user_app, ["list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "amy" in result.stdout and "__ANON__" in result.stdout
