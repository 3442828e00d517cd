"""The replay player (``/replay``) in a real Chromium against a real server: a stored window plays.

History is written into the server's own store before it starts (real SQLite); the page loads the
window over ``/api/replay`` and plays it at 60 times speed. Every wait is on the page's state (its status line,
slider and drawing) with a deadline, never a sleep. The screenshot goes to ``test-results/web/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from rallypoint.storage.export import iso_ms
from tests.support.browser import browser_page, chromium_browser  # noqa: F401 (fixtures)
from tests.support.server import ServerProcess
from tests.support.stored import seed_store, walker_and_hostile

RESULTS = Path("test-results/web")
STEPS = 11
SPACING_MS = 30_000


@pytest.fixture
def replay_server(data_dir: Path) -> Iterator[tuple[ServerProcess, int]]:
    """A server whose history holds two units moving over five minutes, ending ten minutes ago."""
    start = int(time.time() * 1000) - 15 * 60_000
    seed_store(data_dir, walker_and_hostile(start, STEPS, SPACING_MS))
    with ServerProcess(data_dir) as proc:
        yield proc, start


def test_a_replay_window_plays(replay_server: tuple[ServerProcess, int], browser_page: Page) -> None:  # noqa: F811
    server, start = replay_server
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    origin = f"http://127.0.0.1:{server.ports['http']}"
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith((origin, "data:", "blob:")) else None)
    since, until = iso_ms(start - 60_000), iso_ms(start + STEPS * SPACING_MS)
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{origin}/replay?since={since}&until={until}")
    page.get_by_role("button", name="Load").click()
    expect(page.locator("#status")).to_have_text(f"{2 * STEPS} events, 2 units")
    walker = page.locator('g.unit[data-uid="u-walker"]')
    expect(walker).to_have_count(1)
    slider_start = float(page.locator("#slider").input_value())
    where = walker.get_attribute("transform")

    page.locator("#speed").select_option("60")
    page.get_by_role("button", name="Play").click()
    # Predicates are functions: the page's Content-Security-Policy forbids evaluating strings.
    page.wait_for_function("(least) => Number(document.getElementById('slider').value) > least",
                           arg=slider_start + SPACING_MS)
    page.wait_for_function(
        "([uid, before]) => document.querySelector(`g.unit[data-uid='${uid}']`).getAttribute('transform') !== before",
        arg=["u-walker", where],
    )
    expect(page.locator("polyline.trail").first).to_be_attached()
    # The hostile callsign is drawn as text, never as markup.
    expect(page.locator('g.unit[data-uid="u-hostile"] text')).to_have_text("<img src=x onerror=alert(1)>")
    assert page.locator("#map img").count() == 0 and dialogs == []
    # Played to the end, the player stops by itself at the window's last event.
    expect(page.get_by_role("button", name="Play")).to_be_visible(timeout=30_000)
    assert float(page.locator("#slider").input_value()) == start + (STEPS - 1) * SPACING_MS
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / "web-replay.png"))

    # The exports of the window download as files.
    with page.expect_download() as download:
        page.get_by_role("button", name="GeoJSON").click()
    assert download.value.suggested_filename.endswith(".geojson")
    assert violations == [] and elsewhere == []
