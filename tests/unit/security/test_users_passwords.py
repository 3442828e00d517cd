"""Password hashing: argon2id, salted, verification and rehash detection."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from rallypoint.security.passwords import MAX_PASSWORD_CHARS, hash_password, needs_rehash, verify_password

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def test_default_hash_is_argon2id_and_verifies() -> None:
    encoded = hash_password("correct horse")
    assert encoded.startswith("$argon2id$")
    assert "correct horse" not in encoded
    assert verify_password(encoded, "correct horse")
    assert not verify_password(encoded, "correct horsE")
    assert not needs_rehash(encoded)


def test_same_password_gets_a_fresh_salt() -> None:
    assert hash_password("pw", hasher=FAST) != hash_password("pw", hasher=FAST)


def test_malformed_stored_hash_never_matches() -> None:
    assert not verify_password("not-a-hash", "pw", hasher=FAST)
    assert not verify_password("$argon2id$v=19$garbage", "pw", hasher=FAST)
    assert needs_rehash("not-a-hash", hasher=FAST)


def test_weaker_parameters_need_rehash() -> None:
    weak = hash_password("pw", hasher=FAST)
    assert needs_rehash(weak)
    assert not needs_rehash(weak, hasher=FAST)


@pytest.mark.parametrize("bad", ["", "x" * (MAX_PASSWORD_CHARS + 1)])
def test_empty_or_huge_passwords_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        hash_password(bad, hasher=FAST)


def test_huge_candidate_is_rejected_without_hashing() -> None:
    encoded = hash_password("pw", hasher=FAST)
    assert not verify_password(encoded, "pw" * MAX_PASSWORD_CHARS, hasher=FAST)
