"""Local tiles: ``rallypoint tiles add`` checks and copies a file; the server serves it to the picture."""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import httpx

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


def _pmtiles(path: Path) -> Path:
    header = bytearray(127)
    header[0:7] = b"PMTiles"
    header[7] = 3
    header[99], header[100], header[101] = 2, 0, 5  # png, zoom 0-5
    path.write_bytes(bytes(header) + b"\x00" * 1000)
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
    run_cli(data_dir, "tiles", "add", str(_pmtiles(tmp_path / "world.pmtiles")))
    again = _cli(data_dir, "add", str(tmp_path / "area.mbtiles"))
    assert again.returncode == 2 and "exists" in again.stderr
    with ServerProcess(data_dir) as server, httpx.Client(
        base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10
    ) as http:
        sets = http.get("/api/web/tiles").json()
        assert [(s["name"], s["kind"], s["format"], s["url"]) for s in sets] == [
            ("area", "mbtiles", "png", "/tiles/area/{z}/{x}/{y}"),
            ("world", "pmtiles", "png", "/tiles/world.pmtiles"),
        ]
        tile = http.get("/tiles/area/1/0/0")
        assert tile.status_code == 200 and tile.headers["content-type"] == "image/png" and tile.content == _png()
        assert http.get("/tiles/area/1/1/1").status_code == 404
        assert http.get("/tiles/area/1/2/0").status_code == 400
        assert http.get("/tiles/nothing/0/0/0").status_code == 404
        part = http.get("/tiles/world.pmtiles", headers={"Range": "bytes=0-126"})
        assert part.status_code == 206 and part.content[:7] == b"PMTiles" and len(part.content) == 127
        assert http.get("/tiles/..%2Fnode-id.pmtiles").status_code == 404
