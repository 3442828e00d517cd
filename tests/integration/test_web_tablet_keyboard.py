"""The picture on a 1024x768 tablet, used with the keyboard only (real Chromium, software WebGL).

After the login: Tab reaches every panel's summary in the page's order and Enter or Space opens it;
every field of every panel has an accessible name (a <label>, aria-label or aria-labelledby); the
focused element shows an outline; with every panel open nothing is wider than the screen; the arrow
keys pan the map. Screenshot: ``test-results/web/web-tablet.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.server import ServerProcess
from tests.support.web_panels import logged_in, serve_with_accounts, shot

ACCOUNTS = {"tabby": ("admin",)}  # the admin sees every panel's forms
WIDTH = 1024
# Far more Tab presses than the page has stops with its panels closed: a trap or a loop shows as a miss.
MAX_TABS = 300

# What the focused element is, and whether it shows a focus ring (an outline or a box shadow).
FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  const details = e.tagName === 'SUMMARY' ? e.closest('details.panel') : null;
  return { tag: e.tagName, id: e.id, text: (e.textContent || '').trim().slice(0, 40),
           panel: details && details.firstElementChild === e ? details.id : null, ring };
}"""

# Every field of the page (panels opened) without an accessible name.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter((e) => e.type !== 'hidden')
  .filter((e) => !(e.labels && [...e.labels].some((l) => l.textContent.trim()))
                 && !(e.getAttribute('aria-label') || '').trim()
                 && !(e.getAttribute('aria-labelledby') || '').split(/\\s+/).some(
                       (id) => id && document.getElementById(id)?.textContent.trim()))
  .map((e) => `${e.closest('details.panel')?.id || 'page'}: ${e.tagName.toLowerCase()}#${e.id} name=${e.name}`)"""


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    yield from serve_with_accounts(data_dir, ACCOUNTS)


def _tab_through(page: Page) -> list[dict[str, object]]:
    """Press Tab from the top of the page until focus comes back to the first stop (or MAX_TABS)."""
    page.evaluate("() => document.activeElement?.blur()")
    stops: list[dict[str, object]] = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:
            continue
        if stops and focused == stops[0]:
            break
        stops.append(focused)
    return stops


def test_the_picture_works_with_a_keyboard_on_a_tablet(server: ServerProcess, webgl_browser: Browser) -> None:
    with logged_in(webgl_browser, server.ports, "tabby") as page:
        panels: list[str] = page.evaluate("() => [...document.querySelectorAll('details.panel')].map((d) => d.id)")
        assert len(panels) >= 10, panels
        stops = _tab_through(page)
        reached = [s["panel"] for s in stops if s["panel"]]
        assert reached == panels  # every summary, once each, in the page's order
        assert any(s["id"] == "map" for s in stops)
        no_ring = [s for s in stops if not s["ring"]]
        assert not no_ring, f"focused without a visible outline: {no_ring}"

        # Enter and Space (in turn) open each panel from its focused summary.
        for i, panel in enumerate(panels):
            summary = page.locator(f"#{panel} > summary")
            summary.focus()
            page.keyboard.press("Enter" if i % 2 == 0 else "Space")
            expect(page.locator(f"#{panel}")).to_have_attribute("open", "")
        # Sub-sections inside panels (closed <details>) too, so their fields are in the layout.
        page.evaluate("() => document.querySelectorAll('#panels details').forEach((d) => { d.open = true; })")

        assert page.evaluate(UNLABELLED) == []
        width = page.evaluate("() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        assert width <= WIDTH, f"the page is {width} px wide on a {WIDTH} px screen"
        overflowing = page.evaluate(
            """(w) => [...document.querySelectorAll('body *')]
                 .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > w + 0.5)
                 .filter((e) => !e.closest('#side') || e.closest('#side').scrollWidth > e.closest('#side').clientWidth)
                 .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`).slice(0, 10)""",
            WIDTH)
        assert overflowing == [], overflowing

        # The arrow keys pan the map once it has the focus.
        page.locator("#map").focus()
        before = page.evaluate("() => rallypoint.view.map.getCenter().toArray()")
        page.keyboard.press("ArrowRight")
        page.wait_for_function("(lng) => rallypoint.view.map.getCenter().lng > lng + 1e-6", arg=before[0])
        page.keyboard.press("ArrowUp")
        page.wait_for_function("(lat) => rallypoint.view.map.getCenter().lat > lat + 1e-6", arg=before[1])
        page.locator("#panel-" + panels[0].removeprefix("panel-") + " > summary").focus()
        shot(page, "tablet")
