"""The first map page (``/map/map.html``, an SVG drawing) in a real Chromium against a real server.

Login, units, no-fix, display renewal.

Every wait is on the page's own state (its status line, its drawing, its ``features`` and ``session``)
through ``wait_for_function`` or a locator with a deadline, never a sleep. Predicates are functions:
the server's Content-Security-Policy forbids the ``eval`` an expression string would need.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Dialog, Page, Response, Route, WebSocket, expect

from rallypoint.services.demo import PROFILES
from tests.support.accounts import PASSWORDS, create_users, run_cli
from tests.support.cot_client import sa
from tests.support.server import ServerProcess

# The page's own words (map.js REFUSALS and its feed close reasons).
WRONG = "wrong user name or password"
LOCKED = "account locked after repeated failures: try again later"
REVOKED = "session expired or revoked: log in again"
MAX_FAILURES = 3
TTL_S = 6  # token_ttl_s: the page renews at two thirds of it, the feed re-checks every 2 s
LIFETIMES = 3
DEMO_PASSWORD = "newcomer passphrase 1"


class PageWatch:
    """What the page must never see: a dialog of its own, or a Basic challenge to one of its requests."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.basic_challenges: list[str] = []
        self.renewals: list[int] = []
        self.feeds: list[WebSocket] = []
        page.on("dialog", self._dialog)
        page.on("response", self._response)
        page.on("websocket", self._feed)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _feed(self, feed: WebSocket) -> None:
        self.feeds.append(feed)

    def _response(self, response: Response) -> None:
        challenge = response.headers.get("www-authenticate", "")
        if response.status == 401 and re.search(r"\bbasic\b", challenge, re.IGNORECASE):
            self.basic_challenges.append(f"{response.request.method} {response.url}: {challenge}")
        if response.url.endswith("/api/auth/token/renew"):
            self.renewals.append(response.status)

    def closed_feeds(self) -> int:
        """How many of the page's feeds have closed (events arrive only while Playwright is called)."""
        return sum(feed.is_closed() for feed in self.feeds)

    def wait_feeds_closed(self) -> None:
        """Wait, with Playwright's deadline, until every feed the page opened has closed."""
        for feed in self.feeds:
            if not feed.is_closed():
                feed.wait_for_event("close")


def _log_in(page: Page, user: str, password: str) -> None:
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("#login button[type=submit]")


def _status_is(page: Page, text: str, timeout_ms: float = 15_000) -> None:
    expect(page.locator("#status")).to_have_text(text, timeout=timeout_ms)


def _drawn(page: Page) -> list[str]:
    """The callsigns the map draws (one labelled dot per placed unit)."""
    return [str(name) for name in
            page.eval_on_selector_all("#map g:has(circle) text.label", "nodes => nodes.map(n => n.textContent)")]


@pytest.fixture
def locking_server(data_dir: Path) -> Iterator[ServerProcess]:
    """Accounts alice, bob, root (``PASSWORDS``); an account locks after ``MAX_FAILURES`` wrong passwords."""
    create_users(data_dir)
    with ServerProcess(data_dir, env={"RALLYPOINT_LOGIN_MAX_FAILURES": str(MAX_FAILURES)}) as proc:
        yield proc


def test_a_refused_login_says_why_without_a_basic_dialog(locking_server: ServerProcess, browser_page: Page) -> None:
    page = browser_page
    watch = PageWatch(page)
    page.goto(f"http://127.0.0.1:{locking_server.ports['http']}/map/map.html")
    for _ in range(MAX_FAILURES):
        page.evaluate("document.getElementById('status').textContent = ''")  # each answer must be written anew
        _log_in(page, "alice", "not her password")
        _status_is(page, WRONG)
    # Locked now: even the right password is refused, and the page says so.
    _log_in(page, "alice", PASSWORDS["alice"])
    _status_is(page, LOCKED)
    # Someone else still logs in; the page never met a Basic challenge nor opened a dialog.
    _log_in(page, "bob", PASSWORDS["bob"])
    _status_is(page, "live")
    assert watch.basic_challenges == [] and watch.dialogs == []


@pytest.fixture
def demo_ttl_server(data_dir: Path) -> Iterator[ServerProcess]:
    """The demo with short-lived tokens; alice made as the README says, root an admin."""
    run_cli(data_dir, "user", "add", "alice", "--group", "Red", "--role", "member", "--password-stdin",
            stdin=DEMO_PASSWORD + "\n")
    run_cli(data_dir, "user", "add", "root", "--group", "Ops", "--role", "admin", "--password-stdin",
            stdin=PASSWORDS["root"] + "\n")
    with ServerProcess(data_dir, "--demo", env={"RALLYPOINT_TOKEN_TTL_S": str(TTL_S)}) as proc:
        yield proc


def test_a_login_draws_the_demo_units(demo_ttl_server: ServerProcess, browser_page: Page) -> None:
    page = browser_page
    page.goto(f"http://127.0.0.1:{demo_ttl_server.ports['http']}/map/map.html")
    _log_in(page, "alice", DEMO_PASSWORD)
    _status_is(page, "live")
    callsigns = sorted(p.callsign for p in PROFILES)
    page.wait_for_function(
        """(names) => names.every((n) => [...document.querySelectorAll('#map g text.label')]
                                        .some((t) => t.textContent === n && t.parentNode.querySelector('circle')))""",
        arg=callsigns,
    )
    assert sorted(_drawn(page)) == callsigns
    expect(page.locator("#count")).to_have_text(str(len(callsigns)))
    # Revoked while nobody touches the page: the feed's next re-check (every 2 s) logs it out.
    _revoke_alice(demo_ttl_server)
    page.wait_for_function(f"() => session === null && socket === null && $('status').textContent === {REVOKED!r}",
                           timeout=10_000)


def _revoke_alice(server: ServerProcess) -> None:
    """Every token of alice revoked through the admin API, as an operator would."""
    http = f"http://127.0.0.1:{server.ports['http']}"
    root = httpx.post(f"{http}/api/auth/token", auth=("root", PASSWORDS["root"]), timeout=10).json()["access_token"]
    revoked = httpx.delete(f"{http}/api/admin/users/alice/tokens", headers={"Authorization": f"Bearer {root}"},
                           timeout=10)
    assert revoked.status_code == 200, revoked.text


def test_a_unit_without_a_fix_is_not_drawn_at_0_0(server: ServerProcess, browser_page: Page) -> None:
    page = browser_page
    page.goto(f"http://127.0.0.1:{server.ports['http']}/map/map.html")
    page.click("#direct")  # the anonymous picture of the loopback HTTP port: plain TCP clients are in it
    _status_is(page, "live")
    cot = ("127.0.0.1", server.ports["cot"])  # one connection per device: a session speaks for one device
    # Both stay connected while the page is checked: a device that disconnects leaves the picture.
    with socket.create_connection(cot, timeout=10) as lost, socket.create_connection(cot, timeout=10) as never:
        lost.sendall(sa("lost-fix", "LOSTFIX", lat=39.1, lon=-120.0))
        page.wait_for_function("() => features.get('lost-fix')?.geometry != null")
        never.sendall(sa("never-fixed", "NEVERFIX", lat=0.0, lon=0.0))
        lost.sendall(sa("lost-fix", "LOSTFIX", lat=0.0, lon=0.0))
        # Listed, flagged, but never placed: the unit that never had a fix has no dot at all ...
        expect(page.locator("#units")).to_contain_text("NEVERFIX (no GPS fix)")
        expect(page.locator("#units")).to_contain_text("LOSTFIX (no GPS fix)")
        expect(page.locator("#map g.nofix text.label")).to_have_text(["LOSTFIX"])
        assert _drawn(page) == ["LOSTFIX"]
        # ... and the one that lost it stays where it was last seen, said to be a last known position.
        title = page.locator("#map g.nofix circle title").text_content() or ""
        assert "39.10000, -120.00000 (last known: no GPS fix now)" in title


def test_a_display_stays_live_past_several_token_lifetimes_until_revoked(
    demo_ttl_server: ServerProcess, browser_page: Page
) -> None:
    page = browser_page
    watch = PageWatch(page)
    failed: list[str] = []

    def proxy_fails_once(route: Route) -> None:
        # What a reverse proxy answers while the server restarts: the page tries again, it is not logged out.
        if failed:
            route.continue_()
        else:
            failed.append(route.request.url)
            route.fulfill(status=502, body="bad gateway")

    page.route("**/api/auth/token/renew", proxy_fails_once)
    page.goto(f"http://127.0.0.1:{demo_ttl_server.ports['http']}/map/map.html?display=1")
    _log_in(page, "alice", DEMO_PASSWORD)
    _status_is(page, "live (display)")
    first = page.evaluate("session.token")
    start_ms = page.evaluate("Date.now()")
    # Reports made after the first LIFETIMES tokens expired reach the page over the same feed.
    page.wait_for_function(
        """([after, first]) => session && session.token !== first && socket && socket.readyState === 1
             && [...features.values()].some((f) => f.id.startsWith('rallypoint-demo-')
                                                   && f.properties.time_ms > after)""",
        arg=[start_ms + LIFETIMES * TTL_S * 1000, first],
        timeout=(LIFETIMES * TTL_S + 20) * 1000,
    )
    assert page.locator("#status").text_content() == "live (display)"
    assert watch.renewals[0] == 502 and len(watch.renewals) > LIFETIMES, watch.renewals
    assert set(watch.renewals[1:]) == {200}, watch.renewals
    assert len(watch.feeds) == 1 and watch.closed_feeds() == 0

    # Revoked: the page's next renewal (asked for now, not at its timer) is refused and the page logs out
    # at once and closes its feed; had the feed's re-check come first, the page would be logged out too.
    _revoke_alice(demo_ttl_server)
    page.evaluate("renew()")
    assert page.evaluate("[session, socket, $('status').textContent]") == [None, None, REVOKED]
    watch.wait_feeds_closed()
    assert watch.basic_challenges == [] and watch.dialogs == []
