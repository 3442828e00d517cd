"""The picture in Chromium with PyTAK (an independent TAK client library) as the unit's sender, and clustering.

A PyTAK client's unit appears with its symbol and callsign, moves, leaves a trail, and the cursor over it
reads its lat/lon and MGRS (the MGRS checked against an independent UTM projection). Units close together
become one numbered badge when zoomed out; clicking the badge zooms in until they are drawn one by one.
A shape from a TAK client, clicked on the map, is selected with its place, MGRS and remarks.
"""

from __future__ import annotations

import asyncio
import configparser
import re
import socket
import threading
import warnings
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Page, expect
from pyproj import Proj

from tests.support.cot_client import cot, sa
from tests.support.server import ServerProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

RESULTS = Path("test-results/web")
T = TypeVar("T")


class PytakSender:
    """A PyTAK TCP connection on its own event loop, driven from the (synchronous) browser test."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        config = configparser.ConfigParser()
        config["test"] = {"COT_URL": url}
        self.reader, self.writer = self._run(pytak.protocol_factory(config["test"]))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def send(self, event: bytes) -> None:
        async def write() -> None:
            self.writer.write(event)
            await self.writer.drain()
        self._run(write())

    def close(self) -> None:
        async def shut() -> None:
            self.writer.close()
        self._run(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def pytak_sender(server: ServerProcess) -> Iterator[PytakSender]:
    sender = PytakSender(f"tcp://127.0.0.1:{server.ports['cot']}")
    try:
        yield sender
    finally:
        sender.close()


def _open_anonymous(page: Page, server: ServerProcess) -> None:
    page.goto(f"http://127.0.0.1:{server.ports['http']}/")
    page.click("#direct")  # the anonymous picture of the loopback HTTP port (plain TCP clients are __ANON__)
    expect(page.locator("#status")).to_have_text("live")


def _drawn_ids(page: Page, layer: str) -> list[str]:
    """The unit ids (or cluster sizes) the map has rendered in ``layer``."""
    return sorted(page.evaluate(
        """(layer) => rallypoint.view.map.queryRenderedFeatures({ layers: [layer] })
                        .map((f) => String(f.properties.id ?? f.properties.point_count))""", layer))


def test_a_pytak_clients_unit_appears_moves_and_reads_under_the_cursor(
    server: ServerProcess, pytak_sender: PytakSender, webgl_page: Page
) -> None:
    page = webgl_page
    _open_anonymous(page, server)
    pytak_sender.send(pytak.gen_cot(lat=39.2, lon=-120.3, uid="pytak-unit", cot_type="a-f-G-U-C", stale=600,
                                    callsign="PYTAK-1"))
    page.wait_for_function("() => rallypoint.picture.units.get('pytak-unit')?.feature.properties.callsign"
                           " === 'PYTAK-1'")
    pytak_sender.send(pytak.gen_cot(lat=39.21, lon=-120.31, uid="pytak-unit", cot_type="a-f-G-U-C", stale=600,
                                    callsign="PYTAK-1"))
    page.wait_for_function("() => rallypoint.picture.units.get('pytak-unit')?.trail.length === 2")
    # The page frames its first picture itself: wait until it has drawn the unit, then set the view.
    page.wait_for_function("() => rallypoint.view.map.queryRenderedFeatures({ layers: ['units'] }).length === 1")
    page.evaluate("() => rallypoint.view.map.jumpTo({ center: [-120.31, 39.21], zoom: 13 })")
    page.wait_for_function("() => rallypoint.view.map.loaded() && !rallypoint.view.map.isMoving()")
    page.wait_for_function("""() => rallypoint.view.map.queryRenderedFeatures({ layers: ['units'] })
                                 .some((f) => f.properties.id === 'pytak-unit')""")
    # The trail runs from the first report to the second, and the map draws it.
    trail = page.evaluate("() => rallypoint.picture.units.get('pytak-unit').trail")
    assert [point[:2] for point in trail] == [[-120.3, 39.2], [-120.31, 39.21]]
    page.wait_for_function("() => rallypoint.view.map.queryRenderedFeatures({ layers: ['trails'] }).length > 0")

    # The cursor over the unit: its lat/lon, and MGRS digits matching an independent UTM projection.
    box = page.locator("#map").bounding_box()
    assert box is not None
    at = page.evaluate("() => rallypoint.view.map.project([-120.31, 39.21])")
    page.mouse.move(box["x"] + at["x"], box["y"] + at["y"])
    expect(page.locator("#cursor")).to_contain_text("10S GJ")
    cursor = page.locator("#cursor").text_content() or ""
    match = re.fullmatch(r"(-?\d+\.\d{5}), (-?\d+\.\d{5})\s+10S GJ (\d{5}) (\d{5})", cursor.strip())
    assert match, cursor
    lat, lon = float(match[1]), float(match[2])
    assert abs(lat - 39.21) < 0.0005 and abs(lon + 120.31) < 0.0005, cursor
    easting, northing = Proj(proj="utm", zone=10, ellps="WGS84")(lon, lat)
    # Within 2 m: the page converts the unrounded position, the test the 5-decimal text.
    assert abs(int(match[3]) - easting % 100_000) <= 2 and abs(int(match[4]) - northing % 100_000) <= 2, cursor

    # Clicking the unit selects it: its callsign, lat/lon and MGRS in the side column.
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
    expect(page.locator("#sel-callsign")).to_have_text("PYTAK-1")
    expect(page.locator("#sel-latlon")).to_have_text("39.21000, -120.31000")
    expect(page.locator("#sel-mgrs")).to_contain_text("10S GJ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / "web-pytak.png"))


def test_nearby_units_cluster_when_zoomed_out_and_a_click_opens_the_cluster(
    server: ServerProcess, webgl_page: Page
) -> None:
    page = webgl_page
    _open_anonymous(page, server)
    uids = [f"squad-{i}" for i in range(6)]
    with ExitStack() as stack:
        for i, uid in enumerate(uids):
            # Six TAK clients (one device each) within about 300 m of each other.
            tak = stack.enter_context(socket.create_connection(("127.0.0.1", server.ports["cot"]), timeout=10))
            tak.sendall(sa(uid, f"SQUAD{i}", lat=39.1 + 0.001 * (i % 3), lon=-120.3 + 0.002 * (i // 3)))
        # The page frames its first picture itself: wait until it has, then zoom out.
        page.wait_for_function("(n) => rallypoint.view.map.queryRenderedFeatures({ layers: ['units'] }).length === n",
                               arg=len(uids))
        page.evaluate("() => rallypoint.view.map.jumpTo({ center: [-120.298, 39.101], zoom: 6 })")
        page.wait_for_function("() => rallypoint.view.map.loaded() && !rallypoint.view.map.isMoving()")
        page.wait_for_function("""() => rallypoint.view.map.queryRenderedFeatures({ layers: ['clusters'] })
                                     .some((f) => f.properties.point_count === 6)""")
        assert _drawn_ids(page, "units") == []
        assert _drawn_ids(page, "clusters") == ["6"]
        RESULTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(RESULTS / "web-cluster.png"))

        box = page.locator("#map").bounding_box()
        assert box is not None
        at = page.evaluate("""() => { const m = rallypoint.view.map;
                                      const c = m.queryRenderedFeatures({ layers: ['clusters'] })[0];
                                      return m.project(c.geometry.coordinates); }""")
        page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
        # The badge zooms the map in until the units come apart, then each is drawn with its own symbol.
        page.wait_for_function("() => rallypoint.view.map.getZoom() > 9 && !rallypoint.view.map.isMoving()")
        page.wait_for_function("""(n) => rallypoint.view.map.queryRenderedFeatures({ layers: ['units'] }).length
                                     === n""", arg=len(uids))
        assert _drawn_ids(page, "units") == sorted(uids)
        assert _drawn_ids(page, "clusters") == []


def test_a_shape_clicked_on_the_map_shows_its_place_mgrs_and_remarks(server: ServerProcess, webgl_page: Page) -> None:
    page = webgl_page
    _open_anonymous(page, server)
    corners = [(39.10, -120.30), (39.10, -120.28), (39.12, -120.28), (39.12, -120.30), (39.10, -120.30)]
    links = "".join(f'<link point="{lat},{lon}"/>' for lat, lon in corners)
    shape = cot("shape-1", "u-d-f", lat=39.11, lon=-120.29, detail=(
        f'<contact callsign="Area East"/>{links}<strokeColor value="-65536"/><fillColor value="1627324416"/>'
        "<remarks>Keep clear\nuntil 1800</remarks>"))
    with socket.create_connection(("127.0.0.1", server.ports["cot"]), timeout=10) as tak:
        tak.sendall(shape)
        page.wait_for_function("() => rallypoint.picture.units.has('shape-1')")
        page.evaluate("() => rallypoint.view.map.jumpTo({ center: [-120.285, 39.105], zoom: 13 })")
        page.wait_for_function("() => rallypoint.view.map.loaded() && !rallypoint.view.map.isMoving()")
        page.wait_for_function("""() => rallypoint.view.map.queryRenderedFeatures({ layers: ['shapes-fill'] })
                                     .some((f) => f.properties.id === 'shape-1')""")
        # Inside the square, away from its label and its symbol at the middle.
        box = page.locator("#map .maplibregl-canvas").bounding_box()
        assert box is not None
        at = page.evaluate("() => rallypoint.view.map.project([-120.295, 39.105])")
        page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
        expect(page.locator("#sel-callsign")).to_have_text("Area East")
        # The middle of the shape (its mean vertex), where its label is.
        expect(page.locator("#sel-latlon")).to_have_text("39.11000, -120.29000")
        easting, northing = Proj(proj="utm", zone=10, ellps="WGS84")(-120.29, 39.11)
        mgrs = page.locator("#sel-mgrs").text_content() or ""
        digits = re.fullmatch(r"10S GJ (\d{5}) (\d{5})", mgrs)
        assert digits and abs(int(digits[1]) - easting % 100_000) <= 1 and abs(int(digits[2]) - northing % 100_000) <= 1
        expect(page.locator("#sel-remarks")).to_have_text("Keep clear\nuntil 1800")
        RESULTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(RESULTS / "web-selected-shape.png"))
