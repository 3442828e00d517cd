"""The web picture in a real Chromium greys exercise units: simulated traffic is never taken for a real unit.

A plain TCP client reports one live unit and one exercise unit (``opex="e-drill"`` and
``<__rallypoint_exercise>``) side by side; the live feed labels the second (``properties.exercise``)
and the map draws it grey while the live one keeps its colours. Screenshot:
``test-results/web/web-exercise.png``.
"""

from __future__ import annotations

import socket
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.integration.test_exercise_marking import marked
from tests.support.cot_client import sa
from tests.support.server import ServerProcess

RESULTS = Path("test-results/web")


def _drawn(page: Page, uid: str, grey: bool) -> None:
    page.wait_for_function(
        """([uid, grey]) => {
             const m = rallypoint.view.map;
             return m.querySourceFeatures('units').some((f) => f.properties.id === uid && f.properties.stale === grey
                                                              && m.hasImage(f.properties.icon));
           }""",
        arg=[uid, grey],
    )


def test_exercise_units_are_drawn_grey_beside_live_ones(server: ServerProcess, webgl_page: Page) -> None:
    page = webgl_page
    page.goto(f"http://127.0.0.1:{server.ports['http']}/")
    page.click("#direct")  # the anonymous picture of the loopback HTTP port
    expect(page.locator("#status")).to_have_text("live")
    with socket.create_connection(("127.0.0.1", server.ports["cot"]), timeout=10) as tak:
        tak.sendall(sa("live-unit", "LIVE", lat=39.1, lon=-120.0, stale_s=600))
        tak.sendall(marked("RP-EX-drill-u1", "u1").replace(b'lat="39.1" lon="-120.0"', b'lat="39.1" lon="-119.99"'))
        page.wait_for_function("() => rallypoint.picture.units.has('RP-EX-drill-u1')"
                               " && rallypoint.picture.units.has('live-unit')")
        labels = page.evaluate("""() => ['live-unit', 'RP-EX-drill-u1'].map(
                                     (uid) => rallypoint.picture.units.get(uid).feature.properties.exercise)""")
        assert labels == [None, "drill"]
        _drawn(page, "RP-EX-drill-u1", grey=True)
        _drawn(page, "live-unit", grey=False)
        RESULTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(RESULTS / "web-exercise.png"))
