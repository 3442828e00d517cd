"""Drawing in the picture (real Chromium, real server, a raw TCP TAK client) and drawings from TAK clients.

Markers, polygons and routes drawn with the mouse reach the TAK client as ATAK's CoT (types, vertices,
names); ATAK's own free-form shape sent by the client is drawn as a filled polygon; deleting a drawn
item from the panel sends the client a ``t-x-d-d``. Screenshot: ``test-results/web/web-drawing.png``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from rallypoint.model.cot import CotEvent
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.protocol.xmlsafe import parse_fragment
from tests.support.accounts import run_cli
from tests.support.cot_client import sa
from tests.support.samples import current_sample
from tests.support.server import ServerProcess

RESULTS = Path("test-results/web")
PASSWORD = "drawing passphrase 1"
END = b"</event>"


class TakSocket:
    """A plain TCP TAK client read with deadlines (the browser tests are synchronous)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.events: list[CotEvent] = []
        self._buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def wait_for(self, predicate: Callable[[CotEvent], bool], timeout: float = 20.0) -> CotEvent:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching event; got {[(e.type, e.uid) for e in self.events]}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError("the server closed the connection")
            self._buf += chunk
            while (end := self._buf.find(END)) >= 0:
                frame, self._buf = self._buf[: end + len(END)], self._buf[end + len(END):]
                start = frame.find(b"<event")
                if start >= 0:
                    self.events.append(parse_event(frame[start:], Limits()))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def drawing_server(data_dir: Path) -> Iterator[ServerProcess]:
    """carol has no groups: she reads and writes ``__ANON__``, where plain TCP clients report."""
    run_cli(data_dir, "user", "add", "carol", "--password-stdin", stdin=PASSWORD + "\n")
    with ServerProcess(data_dir) as proc:
        yield proc


@pytest.fixture
def tak(drawing_server: ServerProcess) -> Iterator[TakSocket]:
    client = TakSocket(drawing_server.ports["cot"])
    client.send(sa("tak-1", "TAK ONE", lat=38.84, lon=-77.06))
    client.wait_for(lambda e: e.type == "t-x-takp-v")  # registered: everything routed now reaches it
    try:
        yield client
    finally:
        client.close()


def _log_in(page: Page, server: ServerProcess) -> None:
    page.goto(f"http://127.0.0.1:{server.ports['http']}/")
    page.fill("#user", "carol")
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    expect(page.locator("#status")).to_have_text("live")
    page.wait_for_function("() => rallypoint.view.map.getSource('drawing-preview') !== undefined")
    page.evaluate("() => rallypoint.view.map.jumpTo({ center: [-77.065, 38.84], zoom: 14 })")
    page.locator("#panel-drawing > summary").click()


def _click_map(page: Page, x: float, y: float, *, double: bool = False) -> list[float]:
    """Click the map at (x, y) pixels of its canvas; the [lon, lat] the map gives that pixel."""
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    if double:
        page.mouse.dblclick(box["x"] + x, box["y"] + y)
    else:
        page.mouse.click(box["x"] + x, box["y"] + y)
    return page.evaluate("([x, y]) => { const p = rallypoint.view.map.unproject([x, y]); return [p.lng, p.lat]; }",
                         [x, y])


def _vertices(event: CotEvent) -> list[tuple[float, float]]:
    """``(lon, lat)`` of each ``<link point>`` of an event."""
    out = []
    for link in parse_fragment(event.detail.xml, Limits()).iterfind("link"):
        lat, lon = link.get("point", "").split(",")[:2]
        out.append((float(lon), float(lat)))
    return out


def _close(a: list[tuple[float, float]], b: list[list[float]] | list[tuple[float, float]]) -> bool:
    """Same positions within a pixel or so (1e-4 degrees is 10 m; the clicks are hundreds of metres apart)."""
    if len(a) != len(b):
        return False
    return all(abs(p[0] - q[0]) < 1e-4 and abs(p[1] - q[1]) < 1e-4 for p, q in zip(a, b, strict=True))


def test_drawn_polygon_marker_and_route_reach_a_tak_client(
    drawing_server: ServerProcess, tak: TakSocket, webgl_page: Page
) -> None:
    page = webgl_page
    _log_in(page, drawing_server)

    page.click("#draw-polygon")
    page.fill("#draw-name", "Objective <b>")
    corners = [_click_map(page, x, y) for x, y in ((200, 200), (420, 210), (330, 420))]
    page.click("#draw-finish")
    polygon = tak.wait_for(lambda e: e.type == "u-d-f")
    assert polygon.detail.callsign == "Objective <b>"
    assert _close(_vertices(polygon), [*corners, corners[0]])
    assert b"<fillColor" in polygon.detail.xml and b"<strokeColor" in polygon.detail.xml

    page.click("#draw-marker")
    page.fill("#draw-name", "RV 1")
    spot = _click_map(page, 500, 300)
    marker = tak.wait_for(lambda e: e.type == "b-m-p-s-m")
    assert marker.detail.callsign == "RV 1"
    assert _close([(marker.point.lon, marker.point.lat)], [spot])

    page.click("#draw-route")
    page.fill("#draw-name", "Route 1")
    waypoints = [_click_map(page, 120, 500), _click_map(page, 250, 560)]
    waypoints.append(_click_map(page, 380, 520, double=True))  # a double-click ends the route
    route = tak.wait_for(lambda e: e.type == "b-m-r")
    assert route.detail.callsign == "Route 1" and _close(_vertices(route), waypoints)

    # Everything drawn is in the picture again, drawn by the map as shapes, and listed to edit.
    for uid in (polygon.uid, marker.uid, route.uid):
        page.wait_for_function(
            "(uid) => rallypoint.view.map.querySourceFeatures('shapes').some((f) => f.properties.id === uid)", arg=uid)
    expect(page.locator("#draw-items li.drawing-item")).to_have_count(3)

    # Editing the marker sends it again under the same uid, with its new name and colour, where it was.
    page.locator(f"#draw-items li[data-uid='{marker.uid}'] button", has_text="Edit").click()
    expect(page.locator("#draw-name")).to_have_value("RV 1")
    page.fill("#draw-name", "RV 2")
    page.locator("#draw-colour").evaluate("(c) => { c.value = '#0000ff'; c.dispatchEvent(new Event('input')); }")
    page.click("#draw-save")
    edited = tak.wait_for(lambda e: e.type == "b-m-p-s-m" and e.detail.callsign == "RV 2")
    assert edited.uid == marker.uid and (edited.point.lat, edited.point.lon) == (marker.point.lat, marker.point.lon)
    assert f'argb="{0xFF0000FF - (1 << 32)}"'.encode() in edited.detail.xml

    # Deleting the polygon from the list tells the TAK client.
    page.locator(f"#draw-items li[data-uid='{polygon.uid}'] button", has_text="Delete").click()
    delete = tak.wait_for(lambda e: e.type == "t-x-d-d")
    assert delete.detail.link_uid == polygon.uid
    page.wait_for_function("(uid) => !rallypoint.picture.units.has(uid)", arg=polygon.uid)
    expect(page.locator("#draw-items li.drawing-item")).to_have_count(2)


def test_a_line_drawn_from_the_keyboard(drawing_server: ServerProcess, tak: TakSocket, webgl_page: Page) -> None:
    page = webgl_page
    _log_in(page, drawing_server)
    page.click("#draw-line")
    page.fill("#draw-name", "Phase line")
    centres = []
    page.focus("#map .maplibregl-canvas")
    for _ in range(3):
        page.keyboard.press("Enter")  # adds the map's centre
        centres.append(page.evaluate("() => { const c = rallypoint.view.map.getCenter(); return [c.lng, c.lat]; }"))
        page.keyboard.press("ArrowRight")
        # The arrow key's pan is animated: wait until it has ended, so the next Enter adds the centre read here.
        page.wait_for_function("(lon) => { const m = rallypoint.view.map;"
                               " return !m.isMoving() && m.getCenter().lng > lon + 1e-4; }", arg=centres[-1][0])
    page.locator("#draw-finish").focus()
    page.keyboard.press("Enter")
    line = tak.wait_for(lambda e: e.type == "u-d-f")
    assert line.detail.callsign == "Phase line" and _close(_vertices(line), centres)
    assert b"<fillColor" not in line.detail.xml


def test_an_atak_shape_from_a_tak_client_is_drawn_as_a_polygon(
    drawing_server: ServerProcess, tak: TakSocket, webgl_page: Page
) -> None:
    page = webgl_page
    _log_in(page, drawing_server)
    uid = "b112202e-dd33-4fc7-8d3d-09a14e296011"
    tak.send(current_sample("20_atak_export_Drawing_Shapes_Free_Form.xml"))
    tak.send(current_sample("20_atak_export_Drawing_Shapes_Circle.xml"))
    tak.send(current_sample("20_atak_export_Marker_Spot.xml"))
    page.wait_for_function("(uid) => rallypoint.picture.units.get(uid)?.feature.geometry?.type === 'Polygon'", arg=uid)
    ring = page.evaluate("(uid) => rallypoint.picture.units.get(uid).feature.geometry.coordinates[0]", uid)
    assert len(ring) == 7 and ring[0] == [-77.06616468204862, 38.838231810315555]
    page.wait_for_function(
        """(uid) => {
             const drawn = rallypoint.view.map.querySourceFeatures('shapes').filter((f) => f.properties.id === uid);
             return ['fill', 'outline', 'label'].every((role) => drawn.some((f) => f.properties.role === role));
           }""",
        arg=uid,
    )
    # Its colours are ATAK's: white outline, fill white at 150/255.
    fill = page.evaluate(
        """(uid) => rallypoint.view.map.querySourceFeatures('shapes')
             .find((f) => f.properties.id === uid && f.properties.role === 'fill').properties""", uid)
    assert fill["fill"] == "#ffffff" and fill["fill_opacity"] == pytest.approx(0.588)
    page.wait_for_function(
        "() => rallypoint.view.map.querySourceFeatures('shapes').some((f) => f.properties.role === 'spot')")
    # A drawing is never a unit symbol.
    assert not page.evaluate(
        "(uid) => rallypoint.view.map.querySourceFeatures('units').some((f) => f.properties.id === uid)", uid)
    page.evaluate("() => rallypoint.view.map.jumpTo({ center: [-77.064, 38.843], zoom: 14.6 })")
    page.click("#draw-polygon")
    for x, y in ((560, 120), (680, 140), (640, 260)):
        _click_map(page, x, y)
    page.click("#draw-finish")
    tak.wait_for(lambda e: e.type == "u-d-f" and e.uid != uid)
    page.wait_for_function("() => rallypoint.view.map.querySourceFeatures('shapes').length >= 8")
    page.wait_for_function("() => rallypoint.view.map.loaded()")
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / "web-drawing.png"))
