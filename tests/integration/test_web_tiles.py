"""Local tiles: ``rallypoint tiles add`` checks and copies a file; the server serves it to the picture."""

from __future__ import annotations

import gzip
import json
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import httpx
from playwright.sync_api import Page

from rallypoint.web.pmtiles import tile_id
from tests.support import pmtiles_file
from tests.support.accounts import run_cli
from tests.support.server import ServerProcess


def _png() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def _mbtiles(path: Path, fmt: str = "png", tiles: bool = True) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
        db.executemany("INSERT INTO metadata VALUES (?, ?)", [("name", "test"), ("format", fmt)])
        if tiles:
            # XYZ 1/0/0 is TMS row 1 at zoom 1.
            db.execute("INSERT INTO tiles VALUES (1, 0, 1, ?)", (_png(),))
            db.execute("INSERT INTO tiles VALUES (0, 0, 0, ?)", (_png(),))
    return path


def _pmtiles(path: Path, tiles: dict[tuple[int, int, int], bytes] | None = None, leaf_size: int = 0) -> Path:
    path.write_bytes(pmtiles_file.build(tiles or {(z, 0, 0): _png() for z in range(6)}, leaf_size=leaf_size))
    return path


def _brotli_pmtiles(path: Path) -> Path:
    data = bytearray(_pmtiles(path).read_bytes())
    data[97] = 3
    path.write_bytes(bytes(data))
    return path


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "tiles", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, check=False)


def test_bad_files_are_refused_with_the_reason(data_dir: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.mbtiles"
    text.write_text("not a tile file")
    cases = {
        text: "neither an MBTiles (SQLite) nor a PMTiles file",
        _mbtiles(tmp_path / "empty.mbtiles", tiles=False): "holds no tiles",
        _mbtiles(tmp_path / "odd.mbtiles", fmt="tiff"): "format 'tiff' is not one of",
        _brotli_pmtiles(tmp_path / "packed.pmtiles"): "directory compression 'brotli' is not read",
        tmp_path / "absent.mbtiles": "cannot read",
    }
    for path, reason in cases.items():
        answer = _cli(data_dir, "add", str(path))
        assert answer.returncode == 2 and reason in answer.stderr, (path, answer.stderr)
    bad_name = _cli(data_dir, "add", str(_mbtiles(tmp_path / "fine.mbtiles")), "--name", "../up")
    assert bad_name.returncode == 2 and "tile set name" in bad_name.stderr
    assert not (data_dir / "tiles").exists() or list((data_dir / "tiles").iterdir()) == []


def test_added_tiles_are_served(data_dir: Path, tmp_path: Path) -> None:
    added = run_cli(data_dir, "tiles", "add", str(_mbtiles(tmp_path / "area.mbtiles")))
    assert "area: mbtiles png, zoom 0-1, served at /tiles/area/{z}/{x}/{y}" in added.stdout
    world = {(z, x, y): _png() + f"{z}/{x}/{y}".encode() for z in range(3) for x in range(1 << z)
             for y in range(1 << z) if (z, x, y) != (2, 3, 3)}
    run_cli(data_dir, "tiles", "add", str(_pmtiles(tmp_path / "world.pmtiles", world, leaf_size=5)))
    again = _cli(data_dir, "add", str(tmp_path / "area.mbtiles"))
    assert again.returncode == 2 and "exists" in again.stderr
    # One name is one set whatever its kind: both answer at /tiles/<name>/...
    other_kind = _cli(data_dir, "add", str(_pmtiles(tmp_path / "area.pmtiles")))
    assert other_kind.returncode == 2 and "exists" in other_kind.stderr
    with ServerProcess(data_dir) as server, httpx.Client(
        base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10
    ) as http:
        sets = http.get("/api/web/tiles").json()
        assert [(s["name"], s["kind"], s["format"], s["minzoom"], s["maxzoom"], s["url"]) for s in sets] == [
            ("area", "mbtiles", "png", 0, 1, "/tiles/area/{z}/{x}/{y}"),
            ("world", "pmtiles", "png", 0, 2, "/tiles/world/{z}/{x}/{y}"),
        ]
        tile = http.get("/tiles/area/1/0/0")
        assert tile.status_code == 200 and tile.headers["content-type"] == "image/png" and tile.content == _png()
        assert http.get("/tiles/area/1/1/1").status_code == 404
        assert http.get("/tiles/area/1/2/0").status_code == 400
        assert http.get("/tiles/nothing/0/0/0").status_code == 404
        # PMTiles tiles at the same route, found through the file's leaf directories.
        for (z, x, y), content in world.items():
            answer = http.get(f"/tiles/world/{z}/{x}/{y}")
            assert answer.status_code == 200 and answer.content == content, (z, x, y)
            assert answer.headers["content-type"] == "image/png" and "content-encoding" not in answer.headers
        assert http.get("/tiles/world/2/3/3").status_code == 404
        assert http.get("/tiles/world/3/0/0").status_code == 404
        assert http.get("/tiles/world/2/4/0").status_code == 400
        part = http.get("/tiles/world.pmtiles", headers={"Range": "bytes=0-126"})
        assert part.status_code == 206 and part.content[:7] == b"PMTiles" and len(part.content) == 127
        assert http.get("/tiles/..%2Fnode-id.pmtiles").status_code == 404
        # A file damaged after it was added: its tiles are 404 and the server goes on serving the others.
        installed = data_dir / "tiles" / "world.pmtiles"
        installed.write_bytes(installed.read_bytes()[:-40])
        z, x, y = max(world, key=lambda zxy: tile_id(*zxy))  # the last tile of the file
        assert http.get(f"/tiles/world/{z}/{x}/{y}").status_code == 404
        assert http.get("/tiles/area/1/0/0").status_code == 200


def _solid_png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A plain-coloured 256-pixel PNG tile."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = zlib.compress((b"\x00" + bytes(rgb) * size) * size)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


# The colour the map draws at a position, read from the WebGL frame as it is rendered.
PIXEL_AT = """([lon, lat]) => new Promise(resolve => {
  const map = rallypoint.view.map;
  map.once("render", () => {
    const gl = map.painter.context.gl, px = new Uint8Array(4), p = map.project([lon, lat]);
    const r = map.getCanvas().width / map.getCanvas().clientWidth;
    const y = map.getCanvas().height - p.y * r;
    gl.readPixels(Math.round(p.x * r), Math.round(y), 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
    resolve(Array.from(px).slice(0, 3));
  });
  map.triggerRepaint();
})"""


def test_the_page_draws_raster_mbtiles_and_pmtiles_sets(data_dir: Path, tmp_path: Path, webgl_page: Page) -> None:
    red, blue = (220, 30, 30), (30, 30, 220)
    # Zoom 2 tiles north of the equator: x 1 is 90°W-0°, x 2 is 0°-90°E.
    _pmtiles(tmp_path / "east.pmtiles", {(2, 2, 1): _solid_png(red)})
    mbtiles = _mbtiles(tmp_path / "west.mbtiles", tiles=False)
    with sqlite3.connect(mbtiles) as db:
        db.execute("INSERT INTO tiles VALUES (2, 1, 2, ?)", (_solid_png(blue),))  # TMS row 2 is XYZ row 1
    run_cli(data_dir, "tiles", "add", str(tmp_path / "east.pmtiles"))
    run_cli(data_dir, "tiles", "add", str(mbtiles))
    with ServerProcess(data_dir) as server:
        page = webgl_page
        asked: list[tuple[str, int]] = []
        page.on("response",
                lambda r: asked.append((r.url.split("/tiles/", 1)[1], r.status)) if "/tiles/" in r.url else None)
        page.goto(f"http://127.0.0.1:{server.ports['http']}/")
        page.wait_for_function("() => ['tiles-east', 'tiles-west'].every(id => rallypoint.view.map.getLayer(id))")
        page.evaluate("() => rallypoint.view.map.jumpTo({ center: [0, 30], zoom: 1.5 })")
        page.wait_for_function("() => rallypoint.view.map.areTilesLoaded() && rallypoint.view.map.loaded()")
        # Open sea inside each tile, away from place names; and south of the equator, where no set has tiles.
        assert page.evaluate(PIXEL_AT, [60, 15]) == list(red)
        assert page.evaluate(PIXEL_AT, [-40, 30]) == list(blue)
        assert page.evaluate(PIXEL_AT, [-30, -30]) not in (list(red), list(blue))
        assert ("east/2/2/1", 200) in asked and ("west/2/1/1", 200) in asked, asked
        Path("test-results/web").mkdir(parents=True, exist_ok=True)
        page.screenshot(path="test-results/web/web-local-tiles.png")


def test_the_page_draws_vector_mbtiles_and_pmtiles_sets_by_their_layers(
    data_dir: Path, tmp_path: Path, webgl_page: Page
) -> None:
    # Gzipped vector tiles, as tippecanoe and planetiler write them: the PMTiles header says gzip, the
    # MBTiles tile starts with gzip's magic; both reach the browser with Content-Encoding: gzip.
    water = gzip.compress(pmtiles_file.mvt_square("water"))
    (tmp_path / "east.pmtiles").write_bytes(pmtiles_file.build(
        {(2, 2, 1): water}, tile_type="pbf", tile_gzip=True,
        metadata={"vector_layers": [{"id": "water"}, {"id": 3}, "junk"]}))
    mbtiles = _mbtiles(tmp_path / "west.mbtiles", fmt="pbf", tiles=False)
    with sqlite3.connect(mbtiles) as db:
        db.execute("INSERT INTO tiles VALUES (2, 1, 2, ?)", (gzip.compress(pmtiles_file.mvt_square("building")),))
        db.execute("INSERT INTO metadata VALUES ('json', ?)", (json.dumps({"vector_layers": [{"id": "building"}]}),))
    run_cli(data_dir, "tiles", "add", str(tmp_path / "east.pmtiles"))
    run_cli(data_dir, "tiles", "add", str(mbtiles))
    with ServerProcess(data_dir) as server:
        base = f"http://127.0.0.1:{server.ports['http']}"
        listing = {s["name"]: (s["format"], s["layers"]) for s in httpx.get(f"{base}/api/web/tiles", timeout=10).json()}
        assert listing == {"east": ("pbf", ["water"]), "west": ("pbf", ["building"])}
        tile = httpx.get(f"{base}/tiles/east/2/2/1", timeout=10)
        assert tile.headers["content-encoding"] == "gzip" and tile.content == pmtiles_file.mvt_square("water")
        page = webgl_page
        page.goto(f"{base}/")
        page.wait_for_function("""() => ['tiles-east-water-fill', 'tiles-west-building-fill']
                                          .every((id) => rallypoint.view.map.getLayer(id))""")
        # Vector tiles are 512 units: zoom 2 and more asks the sets' zoom 2 tiles.
        page.evaluate("() => rallypoint.view.map.jumpTo({ center: [10, 30], zoom: 2.2 })")
        page.wait_for_function("() => rallypoint.view.map.areTilesLoaded() && rallypoint.view.map.loaded()")
        # The water layer's colour over land in the east tile, the buildings' over the sea in the west one.
        assert page.evaluate(PIXEL_AT, [50, 45]) == [0x8D, 0xB8, 0xDE]
        assert page.evaluate(PIXEL_AT, [-35, 30]) == [0xD9, 0xD0, 0xC9]
        assert page.evaluate(PIXEL_AT, [-30, -10]) not in ([0x8D, 0xB8, 0xDE], [0xD9, 0xD0, 0xC9])
        Path("test-results/web").mkdir(parents=True, exist_ok=True)
        page.screenshot(path="test-results/web/web-vector-tiles.png")


def test_replace_takes_the_name_from_a_set_of_the_other_kind(data_dir: Path, tmp_path: Path) -> None:
    run_cli(data_dir, "tiles", "add", str(_mbtiles(tmp_path / "area.mbtiles")))
    replaced = _cli(data_dir, "add", str(_pmtiles(tmp_path / "area.pmtiles")), "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "area: pmtiles png, zoom 0-5, served at /tiles/area/{z}/{x}/{y}" in replaced.stdout
    assert sorted(p.name for p in (data_dir / "tiles").iterdir()) == ["area.pmtiles"]
    listed = _cli(data_dir, "list")
    assert listed.stdout.splitlines() == ["area\tpmtiles\tpng\t0-5\t/tiles/area/{z}/{x}/{y}"]
