"""Local map tiles: MBTiles and PMTiles files kept in ``<data dir>/tiles/`` and served to the picture.

``rallypoint tiles add FILE`` checks a file with :func:`inspect_tiles` and copies it there under a safe
name. The server then serves:

* ``GET /api/web/tiles``: the tile sets, ``[{"name", "kind", "format", "minzoom", "maxzoom", "url"}]``,
  first the configured remote template (``[web] tile_url``, kind ``url``) when there is one;
* ``GET /tiles/{name}/{z}/{x}/{y}``: one tile of an MBTiles set (XYZ numbering; the file's TMS rows are
  flipped), with the set's media type; 404 when the set or the tile does not exist;
* ``GET /tiles/{name}.pmtiles``: a PMTiles file as it is, with HTTP range requests (206), for a page
  that reads PMTiles.

The picture draws raster sets (png, jpg, webp) as a layer over the base map.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rallypoint.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MEDIA = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
         "pbf": "application/x-protobuf", "mvt": "application/x-protobuf"}
RASTER = frozenset({"png", "jpg", "jpeg", "webp"})
PMTILES_MAGIC = b"PMTiles"
# PMTiles v3 header: tile type at byte 99 (1 mvt, 2 png, 3 jpeg, 4 webp), min/max zoom at 100/101.
PMTILES_TYPES = {1: "pbf", 2: "png", 3: "jpg", 4: "webp"}
MAX_ZOOM = 24
# Deepest zoom asked of a remote tile URL (the common limit of public raster tile services).
REMOTE_MAX_ZOOM = 19


@dataclass(frozen=True)
class TileSet:
    """A tile file as the picture sees it."""

    name: str
    kind: str  # "mbtiles" or "pmtiles"
    format: str
    minzoom: int
    maxzoom: int

    @property
    def url(self) -> str:
        return f"/tiles/{self.name}.pmtiles" if self.kind == "pmtiles" else f"/tiles/{self.name}/{{z}}/{{x}}/{{y}}"


def inspect_tiles(path: Path, name: str | None = None) -> TileSet:
    """Check that ``path`` is a readable MBTiles or PMTiles file; ConfigError says what is wrong."""
    name = name or path.stem
    if not NAME.match(name):
        raise ConfigError(f"tile set name {name!r}: use letters, digits, '-' and '_' (up to 64)")
    try:
        with path.open("rb") as f:
            head = f.read(127)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    if head.startswith(PMTILES_MAGIC):
        if len(head) < 127 or head[7] != 3:
            raise ConfigError(f"{path}: a PMTiles file, but not version 3")
        kind = PMTILES_TYPES.get(head[99])
        if kind is None:
            raise ConfigError(f"{path}: PMTiles tile type {head[99]} is not one the picture knows")
        return TileSet(name, "pmtiles", kind, head[100], head[101])
    if head.startswith(b"SQLite format 3\x00"):
        return _inspect_mbtiles(path, name)
    raise ConfigError(f"{path}: neither an MBTiles (SQLite) nor a PMTiles file")


def _inspect_mbtiles(path: Path, name: str) -> TileSet:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            meta = dict(db.execute("SELECT name, value FROM metadata").fetchall())
            zooms = db.execute("SELECT MIN(zoom_level), MAX(zoom_level), COUNT(*) FROM tiles").fetchone()
    except sqlite3.Error as exc:
        raise ConfigError(f"{path}: not a readable MBTiles file ({exc})") from exc
    fmt = str(meta.get("format", "")).lower()
    if fmt not in MEDIA:
        raise ConfigError(f"{path}: MBTiles format {fmt!r} is not one of {', '.join(sorted(MEDIA))}")
    if not zooms or not zooms[2]:
        raise ConfigError(f"{path}: the MBTiles file holds no tiles")
    return TileSet(name, "mbtiles", fmt, int(zooms[0]), int(zooms[1]))


def tiles_dir(data_dir: Path) -> Path:
    """Where the server keeps tile files."""
    return data_dir / "tiles"


def installed(data_dir: Path) -> list[TileSet]:
    """The tile sets in the data directory that still pass the checks (others are left out)."""
    found = []
    for path in sorted(tiles_dir(data_dir).glob("*")):
        if path.suffix in (".mbtiles", ".pmtiles") and NAME.match(path.stem):
            try:
                found.append(inspect_tiles(path))
            except ConfigError:
                continue
    return found


def _read_tile(path: Path, z: int, x: int, y: int) -> tuple[str, bytes | None]:
    """The set's format and the tile at XYZ ``z/x/y`` (None when absent)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        fmt = db.execute("SELECT value FROM metadata WHERE name='format'").fetchone()
        row = db.execute("SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                         (z, x, (1 << z) - 1 - y)).fetchone()
    return str(fmt[0]).lower() if fmt else "", None if row is None else bytes(row[0])


class LocalTiles:
    """The routes above over ``<data dir>/tiles``."""

    def __init__(self, data_dir: Path, tile_url: str = "") -> None:
        self._dir = tiles_dir(data_dir)
        self._data_dir = data_dir
        # The remote template goes first: local files, more precise where they exist, are drawn over it.
        self._remote = [{"name": "tile_url", "kind": "url", "format": "raster", "minzoom": 0,
                         "maxzoom": REMOTE_MAX_ZOOM, "url": tile_url}] if tile_url else []

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/api/web/tiles", self.listing, methods=["GET"]),
            Route("/tiles/{file:str}", self.pmtiles, methods=["GET", "HEAD"]),
            Route("/tiles/{name:str}/{z:int}/{x:int}/{y:int}", self.tile, methods=["GET"]),
        ]

    async def listing(self, request: Request) -> Response:
        sets = await run_in_threadpool(installed, self._data_dir)
        return JSONResponse([*self._remote, *({**asdict(s), "url": s.url} for s in sets)])

    async def pmtiles(self, request: Request) -> Response:
        name, _, suffix = request.path_params["file"].rpartition(".")
        path = self._dir / f"{name}.pmtiles"
        if suffix != "pmtiles" or not NAME.match(name) or not path.is_file():
            return _missing("no such PMTiles set")
        return FileResponse(path, media_type="application/vnd.pmtiles")

    async def tile(self, request: Request) -> Response:
        name, z, x, y = (request.path_params[k] for k in ("name", "z", "x", "y"))
        path = self._dir / f"{name}.mbtiles"
        if not NAME.match(name) or not path.is_file():
            return _missing("no such tile set")
        if not (0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)):
            return JSONResponse({"error": "bad_tile", "detail": "z, x or y out of range"}, status_code=400)
        try:
            fmt, data = await run_in_threadpool(_read_tile, path, z, x, y)
        except sqlite3.Error:
            return _missing("the tile set cannot be read")
        if data is None or fmt not in MEDIA:
            return _missing("no tile there")
        # Vector tiles are stored gzipped by most tools: the browser unpacks them.
        headers = {"Content-Encoding": "gzip"} if fmt in ("pbf", "mvt") and data[:2] == b"\x1f\x8b" else {}
        return Response(data, media_type=MEDIA[fmt], headers=headers)


def _missing(detail: str) -> Response:
    return JSONResponse({"error": "not_found", "detail": detail}, status_code=404)
