"""The picture's HTTP side against a real server: headers, cookie login, the origin check on writes.

No browser here (see ``test_web_picture.py`` for the page in Chromium): plain HTTP and WebSocket clients
that can send whatever ``Origin`` a hostile page would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.accounts import PASSWORDS, create_users
from tests.support.server import ServerProcess

EVIL = "http://evil.example"


@pytest.fixture
def users_server(data_dir: Path) -> Iterator[ServerProcess]:
    create_users(data_dir)
    with ServerProcess(data_dir) as proc:
        yield proc


def _base(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.ports['http']}"


def _login(http: httpx.Client, base: str, origin: str | None = None) -> httpx.Response:
    headers = {"Origin": origin or base, "X-Requested-With": "rallypoint-web"}
    form = {"grant_type": "password", "username": "alice", "password": PASSWORDS["alice"]}
    return http.post(f"{base}/api/web/login", data=form, headers=headers)


def test_the_page_and_its_files_carry_a_strict_policy(server: ServerProcess) -> None:
    base = _base(server)
    with httpx.Client(timeout=10) as http:
        page = http.get(f"{base}/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        csp = page.headers["content-security-policy"]
        for directive in ("script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
            assert directive in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in page.text  # every script is a file of this server
        worker = http.get(f"{base}/web/vendor/maplibre-gl-csp-worker.js")
        assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")
        assert http.get(f"{base}/web/vendor/basemap.geojson").json()["type"] == "FeatureCollection"
        # The old address leads to the picture, with its query; nothing outside the page's files is served.
        moved = http.get(f"{base}/map?display=1")
        assert moved.status_code == 308 and moved.headers["location"] == "/?display=1"
        for path in ("/web/../picture.py", "/web/%2e%2e/picture.py", "/web/app/nothing.js", "/web/picture.py"):
            refused = http.get(f"{base}{path}")
            assert refused.status_code == 404, path
        # API answers carry the headers too; the generated API index keeps its inline style sheet, no script.
        assert http.get(f"{base}/api/health").headers["x-content-type-options"] == "nosniff"
        index = http.get(f"{base}/api/docs").headers["content-security-policy"]
        assert "style-src 'self' 'unsafe-inline'" in index and "script-src 'self';" in index


def test_login_sets_an_httponly_strict_cookie_and_never_returns_the_token(users_server: ServerProcess) -> None:
    base = _base(users_server)
    with httpx.Client(timeout=10) as http:
        answer = _login(http, base)
        assert answer.status_code == 200, answer.text
        assert "access_token" not in answer.json() and answer.json()["principal"] == "alice"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("access_token=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback; HTTPS adds Secure
        assert http.get(f"{base}/api/web/session").json()["principal"] == "alice"
        # A wrong password: the token service's own reason, no cookie.
        wrong = http.post(f"{base}/api/web/login", headers={"Origin": base},
                          data={"grant_type": "password", "username": "bob", "password": "nope"})
        assert wrong.status_code == 401 and wrong.json()["reason"] == "bad_credentials"
        assert "set-cookie" not in wrong.headers
        # Renewal replaces the cookie; logout revokes the session and clears it.
        assert http.post(f"{base}/api/web/renew", headers={"Origin": base}).status_code == 200
        assert http.post(f"{base}/api/web/logout", headers={"Origin": base}).json() == {"logged_out": True}
        assert http.get(f"{base}/api/web/session").json()["cookie"] is False


def test_writes_riding_on_the_cookie_from_another_origin_are_refused(users_server: ServerProcess) -> None:
    base = _base(users_server)
    with httpx.Client(timeout=10) as http:
        # A login form posted from another site (login CSRF) is refused before any password check.
        assert _login(http, base, origin=EVIL).status_code == 403
        assert _login(http, base).status_code == 200
        token = http.cookies["access_token"]
        for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                        {"Sec-Fetch-Site": "same-site"}):
            refused = http.post(f"{base}/api/web/logout", headers=headers)
            assert refused.status_code == 403 and refused.json()["error"] == "cross_origin", headers
            # Any write of the API that would ride on the cookie, too.
            deleted = http.delete(f"{base}/api/auth/token", headers=headers)
            assert deleted.status_code == 403, headers
        # Nothing was revoked by the refused writes; the same write from the page's origin goes through.
        assert http.get(f"{base}/api/web/session").json()["cookie"] is True
        assert http.post(f"{base}/api/web/logout", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        # A program sending the cookie (node-tak, CloudTAK's server) sends neither header: it is served.
        assert _login(http, base).status_code == 200
        assert http.delete(f"{base}/api/auth/token").status_code == 204
        # A Bearer header carries no ambient credential: scripts and TAK tools are not asked for an Origin.
        bearer = http.post(f"{base}/api/auth/token", auth=("bob", PASSWORDS["bob"])).json()["access_token"]
        kept = httpx.delete(f"{base}/api/auth/token", headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
        assert kept.status_code != 403
        refusals = http.get(f"{base}/metrics").text
        assert 'rallypoint_events_rejected_total{reason="cross_origin",transport="http"}' in refusals
    # The live feed opened with the cookie from another origin is refused (cross-site WebSocket hijacking).
    with httpx.Client(timeout=10) as http:
        assert _login(http, base).status_code == 200
        token = http.cookies["access_token"]
    ws_url = f"ws://127.0.0.1:{users_server.ports['http']}/api/live"
    with pytest.raises(InvalidStatus) as refused_ws:
        connect(ws_url, origin=EVIL, additional_headers={"Cookie": f"access_token={token}"},  # type: ignore[arg-type]
                subprotocols=["rallypoint.live.v1"], open_timeout=10)  # type: ignore[list-item]
    assert refused_ws.value.response.status_code == 403
    with connect(ws_url, origin=base, additional_headers={"Cookie": f"access_token={token}"},  # type: ignore[arg-type]
                 subprotocols=["rallypoint.live.v1"], open_timeout=10) as ws:  # type: ignore[list-item]
        assert '"FeatureCollection"' in str(ws.recv(timeout=10))


# TAK endpoints a page could be tricked into writing to (they are not in the native API's schema).
MARTI_WRITES = [("POST", "/Marti/sync/upload?name=x&keywords=x"), ("PUT", "/Marti/api/missions/x"),
                ("DELETE", "/Marti/api/missions/x"), ("PUT", "/Marti/api/missions/x/contents"),
                ("POST", "/Marti/api/missions/x/subscription")]


def test_every_write_refuses_the_cookie_from_another_origin(users_server: ServerProcess) -> None:
    base = _base(users_server)
    with httpx.Client(timeout=10) as http:
        assert _login(http, base).status_code == 200
        schema = http.get(f"{base}/api/openapi.json").json()
        writes = [(method.upper(), path.replace("{", "").replace("}", ""))
                  for path, operations in schema["paths"].items()
                  for method in operations if method in ("post", "put", "patch", "delete")]
        assert len(writes) > 30, writes  # the whole native API, not a sample
        answers = {}
        for method, path in [*writes, *MARTI_WRITES]:
            answer = http.request(method, f"{base}{path}", headers={"Origin": EVIL}, content=b"{}")
            answers[(method, path)] = (answer.status_code, answer.json().get("error") if answer.content else None)
        refused = {key for key, got in answers.items() if got == (403, "cross_origin")}
        assert refused == set(answers), {k: v for k, v in answers.items() if k not in refused}
        # Nothing above was done: the session is still there.
        assert http.get(f"{base}/api/web/session").json()["cookie"] is True
