"""The tile URL template (``serve --tile-url``, ``[web] tile_url``): the picture draws another server's tiles.

A local HTTP server on another port plays the tile service (another origin than the page). The page
must ask it for tiles by the template, and the CSP must name that origin for images and connections
only; a bad template stops the server before it starts, with the reason.
"""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.support.server import ServerProcess


def _png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A plain-coloured PNG tile."""
    row = b"\x00" + bytes(rgb) * size
    raw = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    """The XYZ (slippy map) column and row of a position."""
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


class TileService:
    """Serves the same green tile for every /{z}/{x}/{y}.png and records the paths asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.tile = _png((40, 160, 60))
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(service.tile)))
                # Tile services answer cross-origin reads: the map fetches tiles from the page's origin.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(service.tile)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TileService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tiles() -> Iterator[TileService]:
    with TileService() as service:
        yield service


@pytest.fixture
def tile_server(data_dir: Path, tiles: TileService) -> Iterator[ServerProcess]:
    with ServerProcess(data_dir, "--tile-url", f"{tiles.origin}/{{z}}/{{x}}/{{y}}.png") as proc:
        yield proc


def test_the_page_draws_tiles_from_the_template_and_the_csp_names_only_that_origin(
    tile_server: ServerProcess, tiles: TileService, webgl_page: Page
) -> None:
    base = f"http://127.0.0.1:{tile_server.ports['http']}"
    listing = httpx.get(f"{base}/api/web/tiles", timeout=10).json()
    assert listing[0] == {"name": "tile_url", "kind": "url", "format": "raster", "minzoom": 0, "maxzoom": 19,
                          "url": f"{tiles.origin}/{{z}}/{{x}}/{{y}}.png"}
    policy = httpx.get(f"{base}/", timeout=10).headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert tiles.origin in directives["img-src"] and tiles.origin in directives["connect-src"]
    assert [name for name, sources in directives.items() if tiles.origin in sources] == ["img-src", "connect-src"]
    assert directives["script-src"] == ["'self'"]

    page = webgl_page
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/")
    page.wait_for_function("() => rallypoint.view.map.getLayer('remote-tiles') !== undefined")
    page.evaluate("() => rallypoint.view.map.jumpTo({ center: [2.35, 48.85], zoom: 5 })")
    page.wait_for_function("() => rallypoint.view.map.areTilesLoaded() && rallypoint.view.map.loaded()")
    asked = [tuple(int(n) for n in p.removesuffix(".png").strip("/").split("/")) for p in tiles.paths]
    assert asked and all(len(t) == 3 and 0 <= t[1] < 2 ** t[0] and 0 <= t[2] < 2 ** t[0] for t in asked), asked
    # 256-pixel tiles are asked one zoom level deeper than the map's zoom (MapLibre's unit is 512).
    z = max(t[0] for t in asked)
    assert z in (5, 6)
    assert (z, *_tile_of(48.85, 2.35, z)) in asked  # the tile holding Paris
    assert not violations, violations
    # The green tile is what the map shows where nothing else is drawn.
    Path("test-results/web").mkdir(parents=True, exist_ok=True)
    page.screenshot(path="test-results/web/web-tile-url.png")


def test_without_a_template_the_csp_is_unchanged(data_dir: Path) -> None:
    with ServerProcess(data_dir) as proc:
        base = f"http://127.0.0.1:{proc.ports['http']}"
        policy = httpx.get(f"{base}/", timeout=10).headers["content-security-policy"]
        assert "img-src 'self' data: blob:;" in policy and "connect-src 'self';" in policy
        assert httpx.get(f"{base}/api/web/tiles", timeout=10).json() == []


@pytest.mark.parametrize("template", [
    "ftp://tiles.example/{z}/{x}/{y}.png",
    "https://tiles.example/{z}/{x}.png",
    "https://user:secret@tiles.example/{z}/{x}/{y}.png",
    "https://tiles.example/{z}/{x}/{y}.png; script-src *",
    "https://tiles.example;x/{z}/{x}/{y}.png",
])
def test_a_bad_template_stops_the_server_with_the_reason(data_dir: Path, template: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "serve", "--data-dir", str(data_dir), "--tile-url", template],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "configuration error: web.tile_url:" in done.stderr
