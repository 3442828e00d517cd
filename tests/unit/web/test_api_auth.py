"""Token issue, use, expiry and revocation on the native API."""

from __future__ import annotations

import asyncio
import sqlite3

from rallypoint.security.tokens import DEFAULT_TOKEN_TTL_S, KEY_FILE, TokenService
from rallypoint.security.users import Role
from rallypoint.storage.sqlite.tokens import SqliteTokenRecords
from tests.unit.web.test_api_harness import PASSWORD, Harness, basic, harness_fixture  # noqa: F401


def test_basic_login_issues_a_short_lived_token_stored_only_as_a_digest(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    answer = harness.http.post("/api/auth/token", auth=("alice", PASSWORD))
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == DEFAULT_TOKEN_TTL_S == 900
    assert answer.headers["cache-control"] == "no-store"
    token = body["access_token"]
    assert len(token) >= 43  # 256 bits, URL-safe base64
    db = sqlite3.connect(harness.data_dir / "tokens.db")
    rows = db.execute("SELECT digest, principal FROM tokens").fetchall()
    db.close()
    assert len(rows) == 1 and rows[0][1] == "alice"
    assert token.encode() not in bytes(rows[0][0]) and len(rows[0][0]) == 32
    assert harness.auditor.actions() == ["login.ok", "token.issue"]


def test_wrong_password_is_401_and_audited(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    answer = harness.http.post("/api/auth/token", auth=("alice", "nope"))
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic")
    assert answer.json()["error"] == "unauthenticated"
    assert harness.auditor.entries[-1][:3] == ("alice", "login.failed", "alice")
    assert harness.auditor.entries[-1][3]["reason"] == "bad_password"


def test_no_credentials_gets_no_token(harness: Harness) -> None:
    assert harness.http.post("/api/auth/token").status_code == 401
    garbled = harness.http.post("/api/auth/token", headers={"Authorization": "Basic !!!"})
    assert garbled.status_code == 401


def test_token_identifies_the_caller_to_every_feature(harness: Harness) -> None:
    harness.add_user("alice", {"A"}, role=Role.APPROVER)
    token = harness.token("alice")
    assert harness.ctx.token_identity is not None

    async def resolve() -> object:
        from starlette.requests import Request

        scope = {"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())], "client": ("x", 1)}
        return await harness.ctx.identify(Request(scope))

    identity = asyncio.run(resolve())
    assert identity.principal == "alice"  # type: ignore[attr-defined]
    assert identity.read_groups == frozenset({"A"}) and identity.role == "approver"  # type: ignore[attr-defined]


def test_expired_token_is_refused(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    headers = harness.bearer("alice")
    assert harness.http.get("/api/clients", headers=headers).status_code == 200
    harness.clock.advance(DEFAULT_TOKEN_TTL_S + 1)
    answer = harness.http.get("/api/clients", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"
    assert "invalid_token" in answer.headers["www-authenticate"]


def test_revoking_the_presented_token(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    headers = harness.bearer("alice")
    assert harness.http.delete("/api/auth/token", headers=headers).status_code == 204
    assert harness.http.get("/api/clients", headers=headers).status_code == 401
    assert harness.http.delete("/api/auth/token", headers=headers).status_code == 401
    assert "token.revoke" in harness.auditor.actions()


def test_unknown_or_malformed_bearer_is_401_not_anonymous(harness: Harness) -> None:
    for value in ("Bearer nope", "Bearer ", "Bearer " + "x" * 5000):
        assert harness.http.get("/api/clients", headers={"Authorization": value}).status_code == 401


def test_disabled_users_tokens_stop_working_and_work_again_when_enabled(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    headers = harness.bearer("alice")
    asyncio.run(harness.users.set_disabled("alice", True))
    assert harness.http.get("/api/clients", headers=headers).status_code == 401
    asyncio.run(harness.users.set_disabled("alice", False))
    assert harness.http.get("/api/clients", headers=headers).status_code == 200


def test_admin_revokes_a_users_tokens(harness: Harness) -> None:
    harness.add_user("root", {"A"}, role=Role.ADMIN)
    harness.add_user("alice", {"A"})
    alice = [harness.bearer("alice"), harness.bearer("alice")]
    answer = harness.http.delete("/api/admin/users/alice/tokens", headers=harness.bearer("root"))
    assert answer.status_code == 200 and answer.json() == {"revoked": 2}
    for headers in alice:
        assert harness.http.get("/api/clients", headers=headers).status_code == 401
    assert harness.auditor.entries[-1][:3] == ("root", "admin.tokens.revoke", "alice")


def test_tokens_survive_a_restart_of_the_token_store(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    token = harness.token("alice")

    async def reopen() -> str | None:
        again = TokenService(SqliteTokenRecords(harness.data_dir / "tokens.db"),
                             key_path=harness.data_dir / KEY_FILE, clock=harness.clock)
        try:
            return await again.principal_of(token)
        finally:
            await again.close()

    assert asyncio.run(reopen()) == "alice"


def test_anonymous_reads_as_anon_and_cannot_write(harness: Harness) -> None:
    harness.connect("s-anon", "uid-anon", "ANON", {"__ANON__"})
    harness.connect("s-a", "uid-a", "ALPHA", {"A"})
    seen = {c["uid"] for c in harness.http.get("/api/clients").json()}
    assert seen == {"uid-anon"}
    assert harness.http.post("/api/chat", json={"text": "hi", "room": "All Chat Rooms"}).status_code == 401


def test_renewal_extends_a_session_and_logout_ends_every_token_of_it(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    first = harness.token("alice")
    harness.clock.advance(DEFAULT_TOKEN_TTL_S - 1)
    renewed = harness.http.post("/api/auth/token/renew", headers={"Authorization": f"Bearer {first}"})
    assert renewed.status_code == 200 and renewed.headers["cache-control"] == "no-store"
    second = renewed.json()["access_token"]
    harness.clock.advance(2)  # the first token has expired; the renewed one has not
    assert harness.http.get("/api/clients", headers={"Authorization": f"Bearer {first}"}).status_code == 401
    assert harness.http.get("/api/clients", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    assert harness.http.post("/api/auth/token/renew", headers={"Authorization": f"Bearer {first}"}).status_code == 401
    third = harness.http.post("/api/auth/token/renew", headers={"Authorization": f"Bearer {second}"}).json()
    assert harness.http.delete("/api/auth/token", headers={"Authorization": f"Bearer {second}"}).status_code == 204
    # Revoking one token of a session revokes the tokens renewed from it too.
    assert harness.http.get("/api/clients", headers={"Authorization": f"Bearer {third['access_token']}"}).status_code \
        == 401
    assert harness.auditor.actions().count("token.renew") == 2


def test_a_disabled_account_renews_nothing(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    token = harness.token("alice")
    asyncio.run(harness.users.set_disabled("alice", True))
    answer = harness.http.post("/api/auth/token/renew", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"


def test_a_pages_refused_login_gets_no_basic_challenge(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    page = {"X-Requested-With": "rallypoint-map"}
    answer = harness.http.post("/api/auth/token", auth=("alice", "nope"), headers=page)
    assert answer.status_code == 401 and not answer.headers["www-authenticate"].lower().startswith("basic")
    assert harness.http.post("/api/auth/token", headers=page).headers["www-authenticate"].startswith("Bearer")


def test_tokens_are_signed_jwts_and_a_forged_one_is_refused(harness: Harness) -> None:
    import jwt

    harness.add_user("alice", {"A"})
    token = harness.token("alice")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == DEFAULT_TOKEN_TTL_S
    forged = jwt.encode({**claims, "sub": "root"}, "not our key", algorithm="HS256")
    assert harness.http.get("/api/clients", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    assert harness.http.get("/api/clients", headers={"Authorization": f"Bearer {unsigned}"}).status_code == 401
    key = harness.data_dir / "token-signing.key"
    assert key.stat().st_mode & 0o077 == 0 and len(key.read_bytes()) == 32
