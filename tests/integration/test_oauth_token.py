"""``POST /oauth/token`` on the real server: TAK Server's password grant, lockout, audit, tokens as
Bearer and ``access_token`` cookie on ``Marti/api/tls/config``, instant revocation, and no Basic
challenge for the map page's requests."""

from __future__ import annotations

import base64
import json
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import audit_entries, run_cli
from tests.support.poll import wait_until_sync
from tests.support.server import ServerProcess

PASSWORDS = {"alice": "alice passphrase 1", "bob": "bob passphrase 22", "root": "root passphrase 333"}
TTL_S = 120
MAX_FAILURES = 3
JSON_UTF8 = "application/json;charset=UTF-8"


@pytest.fixture
def oauth_server(data_dir: Path) -> Iterator[ServerProcess]:
    """alice in A, bob in B, root an admin; tokens live TTL_S; MAX_FAILURES wrong passwords lock."""
    for name, group, role in (("alice", "A", "member"), ("bob", "B", "member"), ("root", "Ops", "admin")):
        run_cli(data_dir, "user", "add", name, "--group", group, "--role", role, "--password-stdin",
                stdin=PASSWORDS[name] + "\n")
    proc = ServerProcess(data_dir, env={"RALLYPOINT_TOKEN_TTL_S": str(TTL_S),
                                        "RALLYPOINT_LOGIN_MAX_FAILURES": str(MAX_FAILURES)})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _plain(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10)


def _enroll(server: ServerProcess) -> httpx.Client:
    """The enrollment port: TLS with our CA, no client certificate (as CloudTAK and node-tak log in)."""
    return httpx.Client(base_url=f"https://127.0.0.1:{server.ports['enroll']}", timeout=10,
                        verify=ssl.create_default_context(cafile=str(server.data_dir / "ca" / "ca.pem")))


def _grant(http: httpx.Client, name: str, password: str, **headers: str) -> httpx.Response:
    return http.post("/oauth/token", data={"grant_type": "password", "username": name, "password": password},
                     headers=headers)


def _cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"access_token={token}"}


def _part(part: str) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _claims(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header, payload, _ = token.split(".")
    return _part(header), _part(payload)


def test_password_grant_answers_a_jwt_accepted_as_bearer_and_cookie(oauth_server: ServerProcess) -> None:
    with _enroll(oauth_server) as enroll, _plain(oauth_server) as plain:
        answer = _grant(enroll, "alice", PASSWORDS["alice"])
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == JSON_UTF8 and answer.headers["cache-control"] == "no-store"
        body = answer.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == TTL_S
        token = body["access_token"]
        header, claims = _claims(token)
        assert header == {"alg": "HS256", "typ": "JWT"}
        assert claims["sub"] == "alice" and claims["aud"] == "rallypoint" and claims["jti"]
        assert claims["exp"] == claims["iat"] + TTL_S and claims["nbf"] == claims["iat"]  # type: ignore[operator]

        # node-tak sends the grant in the query string with no body.
        by_query = enroll.post("/oauth/token", params={"grant_type": "password", "username": "alice",
                                                        "password": PASSWORDS["alice"]})
        assert by_query.status_code == 200 and by_query.json()["access_token"] != token

        # The enrollment port takes the token in place of Basic credentials, both ways.
        assert enroll.get("/Marti/api/tls/config").status_code == 401
        for headers in ({"Authorization": f"Bearer {token}"}, _cookie(token)):
            config = enroll.get("/Marti/api/tls/config", headers=headers)
            assert config.status_code == 200 and "certificateConfig" in config.text, headers
        # So do the Marti and native routes of the other ports.
        assert plain.get("/api/clients", headers=_cookie(token)).status_code == 200
        assert plain.get("/api/clients", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert plain.get("/api/clients", headers=_cookie(token + "x")).status_code == 401
        # The page's port serves the grant too.
        assert _grant(plain, "bob", PASSWORDS["bob"]).status_code == 200

    oauth_logins = [e for e in audit_entries(oauth_server.data_dir) if e.detail.get("via") == "oauth"]
    assert [(e.actor, e.action) for e in oauth_logins][:2] == [("alice", "login.ok"), ("alice", "token.issue")]


def test_wrong_password_is_a_401_json_error_without_basic_challenge_then_lockout(
    oauth_server: ServerProcess,
) -> None:
    with _plain(oauth_server) as http:
        for attempt in range(MAX_FAILURES):
            wrong = _grant(http, "alice", f"wrong {attempt}")
            assert wrong.status_code == 401
            assert wrong.headers["content-type"] == JSON_UTF8
            assert wrong.json() == {"error": "invalid_grant", "error_description": "Bad credentials",
                                    "reason": "bad_credentials"}
            assert "basic" not in wrong.headers.get("www-authenticate", "").lower()
        # An unknown name reads exactly like a wrong password.
        assert _grant(http, "nobody", "x").json()["reason"] == "bad_credentials"
        locked = _grant(http, "alice", PASSWORDS["alice"])
        assert locked.status_code == 401 and locked.json()["reason"] == "locked"
        assert locked.json()["error_description"] == "User account is locked"

        assert _grant(http, "bob", PASSWORDS["bob"]).status_code == 200  # others are not affected
        bad = http.post("/oauth/token", data={"grant_type": "client_credentials"})
        assert bad.status_code == 400 and bad.json()["error"] == "unsupported_grant_type"
        missing = http.post("/oauth/token", data={"grant_type": "password"})
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
        metrics = http.get("/metrics").text
        assert 'reason="oauth_bad_credentials"' in metrics and 'reason="oauth_locked"' in metrics

        # The native login keeps its Basic challenge for scripts, but not for a page's request.
        scripted = http.post("/api/auth/token", auth=("bob", "wrong"))
        assert scripted.status_code == 401 and scripted.headers["www-authenticate"].startswith("Basic")
        paged = http.post("/api/auth/token", auth=("bob", "wrong"), headers={"X-Requested-With": "rallypoint-map"})
        assert paged.status_code == 401 and paged.headers["www-authenticate"].startswith("Bearer")

    failed = [e for e in audit_entries(oauth_server.data_dir) if e.action == "login.failed"]
    reasons = [e.detail["reason"] for e in failed if e.target == "alice" and e.detail.get("via") == "oauth"]
    assert reasons == ["bad_password"] * MAX_FAILURES + ["locked"]


def test_revoked_and_disabled_accounts_tokens_are_refused_at_once(oauth_server: ServerProcess) -> None:
    with _enroll(oauth_server) as enroll, _plain(oauth_server) as plain:
        alice = _grant(enroll, "alice", PASSWORDS["alice"]).json()["access_token"]
        bob = _grant(enroll, "bob", PASSWORDS["bob"]).json()["access_token"]
        root = {"Authorization": f"Bearer {_grant(plain, 'root', PASSWORDS['root']).json()['access_token']}"}

        def config(token: str) -> int:
            return enroll.get("/Marti/api/tls/config", headers=_cookie(token)).status_code

        assert config(alice) == 200 and config(bob) == 200
        # Logging out (the token's own revocation) ends it on every port with the next request.
        assert plain.delete("/api/auth/token", headers={"Authorization": f"Bearer {alice}"}).status_code == 204
        assert config(alice) == 401
        assert plain.get("/api/clients", headers={"Authorization": f"Bearer {alice}"}).status_code == 401
        # An administrator disabling the account ends its tokens too.
        assert plain.patch("/api/admin/users/bob", json={"disabled": True}, headers=root).status_code == 200
        assert config(bob) == 401
        assert plain.get("/api/clients", headers={"Authorization": f"Bearer {bob}"}).status_code == 401
        # Disabled from the command line (another process): refused as soon as the store says so.
        carol = _grant(enroll, "root", PASSWORDS["root"]).json()["access_token"]
        assert config(carol) == 200
        run_cli(oauth_server.data_dir, "user", "disable", "root")
        wait_until_sync(lambda: config(carol) == 401, "disabled account's token refused")


def test_no_request_of_the_map_page_gets_a_basic_challenge(oauth_server: ServerProcess) -> None:
    """Every endpoint the page's script calls, refused as the page would be refused."""
    with _plain(oauth_server) as http:
        script = http.get("/map/map.js").text
        called = set(re.findall(r'fetch\("(/[^"]+)"', script))
        assert called == {"/oauth/token", "/api/auth/token/renew", "/api/auth/token"}
        assert "X-Requested-With" in script
        page = {"X-Requested-With": "rallypoint-map"}
        stale = {**page, "Authorization": "Bearer expired.or.revoked"}
        refusals = [
            _grant(http, "alice", "wrong", **page),
            http.post("/api/auth/token/renew", headers=stale),
            http.delete("/api/auth/token", headers=stale),
            http.post("/api/auth/token", headers=page),
        ]
        for answer in refusals:
            assert answer.status_code == 401, answer.request.url
            assert "basic" not in answer.headers.get("www-authenticate", "").lower(), answer.request.url
            assert answer.headers["content-type"].startswith("application/json")
