"""Replay in the picture (real Chromium with WebGL, real server): stored history plays in the main map.

History is written into the server's store before it starts; the Replay panel loads a window in the
map's current view, the map shows the REPLAY badge and the replayed units (not the live one), a unit
moves as the slider advances and as the player plays, exports are offered, and "Back to live" returns
to the live picture. Screenshot: ``test-results/web/web-replay-panel.png``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.cot_client import sa
from tests.support.server import ServerProcess
from tests.support.stored import make_event, seed_store, walker_and_hostile

RESULTS = Path("test-results/web")
STEPS = 11
SPACING_MS = 30_000


@pytest.fixture
def replay_server(data_dir: Path) -> Iterator[tuple[ServerProcess, int]]:
    """Two units moving north-east over five minutes (ending ten minutes ago), and one far away."""
    start = int(time.time() * 1000) - 15 * 60_000
    rows = [
        *walker_and_hostile(start, STEPS, SPACING_MS),
        *(make_event("u-far", time=start + i * SPACING_MS, lat=-33.9, lon=151.2, callsign="FAR", stale_s=45)
          for i in range(STEPS)),
    ]
    seed_store(data_dir, rows)
    with ServerProcess(data_dir) as proc:
        yield proc, start


def _units(page: Page) -> dict[str, list[float]]:
    """What the map's unit source holds: uid -> [lon, lat]."""
    return page.evaluate(
        """() => Object.fromEntries(rallypoint.view.map.querySourceFeatures('units')
             .filter((f) => f.properties.id).map((f) => [f.properties.id, f.geometry.coordinates]))""")


def test_stored_history_plays_in_the_main_map_and_live_comes_back(
    replay_server: tuple[ServerProcess, int], webgl_page: Page
) -> None:
    server, start = replay_server
    page = webgl_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"http://127.0.0.1:{server.ports['http']}/#connect")  # the anonymous picture on loopback
    expect(page.locator("#status")).to_have_text("live")
    with socket.create_connection(("127.0.0.1", server.ports["cot"]), timeout=10) as tak:
        tak.sendall(sa("live-unit", "LIVE", lat=39.02, lon=-120.02))
        page.wait_for_function("() => rallypoint.picture.units.has('live-unit')")
        page.wait_for_function(
            "() => rallypoint.view.map.querySourceFeatures('units').some((f) => f.properties.id === 'live-unit')")

        page.evaluate("() => rallypoint.view.map.jumpTo({ center: [-120.0, 39.05], zoom: 10 })")
        page.locator("#panel-replay > summary").click()
        page.fill("#replay-since", _utc(start - 60_000))
        page.fill("#replay-until", _utc(start + STEPS * SPACING_MS))
        page.click("#replay-load")
        # The far unit is outside the view, so outside the window's area.
        expect(page.locator("#replay-status")).to_have_text(f"{2 * STEPS} events, 2 units: replaying")
        expect(page.locator(".replay-badge")).to_contain_text("REPLAY")
        page.wait_for_function("() => rallypoint.view.map.querySourceFeatures('units').length === 2")
        units = _units(page)
        assert set(units) == {"u-walker", "u-hostile"}  # the live unit is not drawn during the replay
        assert units["u-walker"] == pytest.approx([-120.0, 39.0], abs=1e-4)  # tiles quantise a little

        # The slider moves the unit: half way is the sixth report.
        page.locator("#replay-slider").evaluate(
            "(s, t) => { s.value = String(t); s.dispatchEvent(new Event('input')); }", start + 5 * SPACING_MS)
        page.wait_for_function(
            """() => rallypoint.view.map.querySourceFeatures('units')
                 .some((f) => f.properties.id === 'u-walker' && Math.abs(f.geometry.coordinates[1] - 39.05) < 1e-4)""")
        expect(page.locator("#replay-clock")).to_have_text(_label(start + 5 * SPACING_MS))

        # Playing at 60 times speed carries it further north, with its trail; the player stops at the window's end.
        page.select_option("#replay-speed", "60")
        page.click("#replay-play")
        page.wait_for_function(
            """() => rallypoint.view.map.querySourceFeatures('units')
                 .some((f) => f.properties.id === 'u-walker' && f.geometry.coordinates[1] > 39.06)""")
        page.wait_for_function("() => rallypoint.view.map.querySourceFeatures('trails').length >= 2")
        expect(page.locator("#replay-play")).to_have_text("Play", timeout=60_000)
        assert float(page.locator("#replay-slider").input_value()) == start + (STEPS - 1) * SPACING_MS
        page.wait_for_function("() => rallypoint.view.map.loaded()")
        RESULTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(RESULTS / "web-replay-panel.png"))

        # Exports of the same window and area.
        links = page.locator("#replay-exports a")
        expect(links).to_have_count(3)
        hrefs = [links.nth(i).get_attribute("href") or "" for i in range(3)]
        assert [h.rsplit("format=", 1)[1] for h in hrefs] == ["kml", "geojson", "csv"]
        assert all("bbox=" in h and f"since={(start - 60_000) // 1000 * 1000}" in h for h in hrefs)
        csv = page.request.get(f"http://127.0.0.1:{server.ports['http']}{hrefs[2]}")
        assert csv.ok and "u-walker" in csv.text() and "u-far" not in csv.text()

        # Back to live: the badge goes, the live unit returns, the replayed ones leave.
        page.click("#replay-live")
        expect(page.locator(".replay-badge")).to_have_count(0)
        page.wait_for_function(
            """() => { const ids = rallypoint.view.map.querySourceFeatures('units').map((f) => f.properties.id);
                       return ids.includes('live-unit') && !ids.includes('u-walker'); }""")
        expect(page.locator("#replay-play")).to_be_disabled()
    assert dialogs == []


def _utc(ms: int) -> str:
    """A datetime-local value (UTC, to the second)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))


def _label(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))
