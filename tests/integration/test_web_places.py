"""Place names on the picture's base map (real Chromium with WebGL): labels without glyph files.

Larger places are labelled from lower zooms; every label is a canvas image the page draws itself, so
the page asks the server for no font and no glyph. Screenshot: ``test-results/web/web-places.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page

from rallypoint.web.picture import STATIC_DIR
from tests.support.server import ServerProcess

RESULTS = Path("test-results/web")


def _labelled(page: Page) -> set[str]:
    """Names the map has placed (drawn, after collisions) in its view."""
    page.wait_for_function("() => rallypoint.view.map.loaded() && rallypoint.view.map.areTilesLoaded()")
    return set(page.evaluate(
        "() => rallypoint.view.map.queryRenderedFeatures({ layers: ['places'] }).map((f) => f.properties.name)"))


def test_place_names_by_zoom_without_glyphs(server: ServerProcess, webgl_page: Page) -> None:
    places = json.loads((STATIC_DIR / "vendor" / "places.geojson").read_text(encoding="utf-8"))["features"]
    by_name = {f["properties"]["name"]: f["properties"] for f in places}
    assert by_name["Paris"]["minzoom"] == 3 and by_name["Lyon"]["minzoom"] >= 5
    assert all(f["properties"]["population"] >= 300_000 or f["properties"]["minzoom"] <= 4 for f in places)

    page = webgl_page
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(f"http://127.0.0.1:{server.ports['http']}/")
    page.wait_for_function("() => rallypoint.view.map.getLayer('places') !== undefined")

    page.evaluate("() => rallypoint.view.map.jumpTo({ center: [2.35, 48.85], zoom: 2.2 })")
    wide = _labelled(page)
    assert "Paris" not in wide and "Lyon" not in wide  # below their zoom
    page.evaluate("() => rallypoint.view.map.jumpTo({ center: [3.5, 47.0], zoom: 5.5 })")
    near = _labelled(page)
    assert {"Paris", "Lyon"} <= near, near
    assert page.evaluate("() => rallypoint.view.map.hasImage('p:Paris')")
    assert not [u for u in asked if "glyph" in u or u.endswith((".pbf", ".ttf", ".woff", ".woff2"))], asked
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / "web-places.png"))
