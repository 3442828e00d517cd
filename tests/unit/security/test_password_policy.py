"""Rules for new account passwords: length, the bundled common-password list, account and service names."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rallypoint.cli.users import user_app
from rallypoint.security.passwords import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    PasswordPolicy,
    WeakPassword,
    load_common_passwords,
)
from tests.support.accounts import read_user


@pytest.fixture(scope="module")
def policy() -> PasswordPolicy:
    return PasswordPolicy.bundled()


def test_bundled_list_ships_a_few_thousand_lower_case_entries() -> None:
    common = load_common_passwords()
    assert 2000 <= len(common) <= 20000
    assert all(entry == entry.casefold() and entry.strip() == entry for entry in common)
    assert {"password", "123456", "qwerty", "iloveyou", "letmein", "atakatak"} <= common


def test_minimum_is_twelve_and_long_passphrases_are_allowed(policy: PasswordPolicy) -> None:
    assert MIN_PASSWORD_CHARS == 12
    assert policy.problem("x7#kQ2!mZ9v") == "a password must be at least 12 characters long (this one has 11)"
    assert policy.problem("x7#kQ2!mZ9vB") is None
    long = "violet harbour kettle " * 46  # 1012 characters: a long passphrase is fine
    assert policy.problem(long) is None
    assert "at most 1024" in (policy.problem("ab" * (MAX_PASSWORD_CHARS // 2 + 1)) or "")
    assert policy.problem("") == "a password cannot be empty"


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "PASSWORD1234",
        "Password1234!",
        "P@ssw0rd2024",
        "qwertyuiop12",
        "123456789012",
        "1q2w3e4r5t6y",
        "iloveyou1234",
        "Summer2024!!",
        "!!!letmein!!!",
        "trustno1trustno1",
    ],
)
def test_common_passwords_are_refused_whatever_the_case_or_padding(policy: PasswordPolicy, password: str) -> None:
    reason = policy.problem(password)
    assert reason is not None and "commonly used passwords" in reason


def test_repetitions_are_refused(policy: PasswordPolicy) -> None:
    assert "different characters" in (policy.problem("aaaaaaaaaaaaaa") or "")
    assert "different characters" in (policy.problem("abababababab") or "")


def test_account_and_service_names_are_refused(policy: PasswordPolicy) -> None:
    assert "account name" in (policy.problem("Zorblax123456", user="zorblax") or "")
    assert policy.problem("rallypoint!2026") is not None
    assert policy.problem("Zorblax123456", user="quentin") is None


def test_check_raises_with_the_reason(policy: PasswordPolicy) -> None:
    with pytest.raises(WeakPassword, match="at least 12"):
        policy.check("short")
    assert policy.check("violet harbour kettle") == "violet harbour kettle"


def test_cli_refuses_a_short_password_and_creates_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        user_app, ["add", "quentin", "--password-stdin", "--data-dir", str(tmp_path)], input="short\n"
    )
    assert result.exit_code == 1
    assert "refused: a password must be at least 12 characters long (this one has 5)" in result.output
    assert "short\n" not in result.output.replace("refused", "")
    assert read_user(tmp_path, "quentin") is None


def test_cli_passwd_refuses_a_common_password(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    assert CliRunner().invoke(user_app, ["add", "quentin", *d]).exit_code == 0
    result = CliRunner().invoke(user_app, ["passwd", "quentin", "--password-stdin", *d], input="Password1234\n")
    assert result.exit_code == 1
    assert "commonly used passwords" in result.output
    user = read_user(tmp_path, "quentin")
    assert user is not None and not user.has_password
