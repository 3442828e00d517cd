"""TokenRecords contract: what ``security.tokens`` relies on, on every backend."""

from __future__ import annotations

from rallypoint.storage.base.tokens import TokenRecord, TokenRecords


def token(n: int, principal: str = "alice", *, expires_ms: int = 10_000, session: str | None = None) -> TokenRecord:
    return TokenRecord(digest=bytes([n]) * 32, principal=principal, issued_ms=1000, expires_ms=expires_ms,
                       session=session)


async def test_a_token_is_found_by_digest_revoked_or_not(token_records: TokenRecords) -> None:
    await token_records.insert(token(1, session="s1"))
    assert await token_records.get(bytes([1]) * 32) == token(1, session="s1")
    assert await token_records.get(bytes([2]) * 32) is None
    assert await token_records.revoke(bytes([1]) * 32, now_ms=2000)
    assert not await token_records.revoke(bytes([1]) * 32, now_ms=3000)
    assert not await token_records.revoke(bytes([2]) * 32, now_ms=3000)
    got = await token_records.get(bytes([1]) * 32)
    assert got is not None and got.revoked_ms == 2000


async def test_revoking_a_session_ends_its_live_tokens_only(token_records: TokenRecords) -> None:
    await token_records.insert(token(1, session="s1"))
    await token_records.insert(token(2, session="s1"))
    await token_records.insert(token(3, session="s1", expires_ms=1500))  # already expired at 2000
    await token_records.insert(token(4, session="s2"))
    assert await token_records.revoke_session("s1", now_ms=2000) == 2
    assert await token_records.revoke_session("s1", now_ms=2000) == 0
    live = await token_records.get(bytes([4]) * 32)
    assert live is not None and live.revoked_ms is None


async def test_revoking_a_principal_ignores_case(token_records: TokenRecords) -> None:
    await token_records.insert(token(1, "Alice"))
    await token_records.insert(token(2, "alice"))
    await token_records.insert(token(3, "bob"))
    assert await token_records.revoke_principal("ALICE", now_ms=2000) == 2
    bob = await token_records.get(bytes([3]) * 32)
    assert bob is not None and bob.revoked_ms is None


async def test_prune_deletes_what_expired(token_records: TokenRecords) -> None:
    await token_records.insert(token(1, expires_ms=1500))
    await token_records.insert(token(2, expires_ms=2000))
    await token_records.insert(token(3, expires_ms=2001))
    assert await token_records.prune(now_ms=2000) == 2
    assert await token_records.get(bytes([1]) * 32) is None
    assert await token_records.get(bytes([3]) * 32) is not None
