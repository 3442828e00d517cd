"""Local map tiles: MBTiles and PMTiles files kept in ``<data dir>/tiles/`` and served to the picture.

``rallypoint tiles add FILE`` checks a file with :func:`inspect_tiles` and copies it there under a safe
name. The server then serves:

* ``GET /api/web/tiles``: the tile sets, ``[{"name", "kind", "format", "minzoom", "maxzoom", "url"}]``,
  first the configured remote template (``[web] tile_url``, kind ``url``) when there is one;
* ``GET /tiles/{name}/{z}/{x}/{y}``: one tile of a set, MBTiles or PMTiles alike (XYZ numbering; an
  MBTiles file's TMS rows are flipped, a PMTiles file's directories walked by ``web/pmtiles.py``), with
  the set's media type; 404 when the set or the tile does not exist;
* ``GET /tiles/{name}.pmtiles``: a PMTiles file as it is, with HTTP range requests (206), for clients
  that read PMTiles themselves.

The picture draws raster sets (png, jpg, webp) of either kind as a layer over the base map.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rallypoint.errors import ConfigError
from rallypoint.web import pmtiles

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MEDIA = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif",
         "pbf": "application/x-protobuf", "mvt": "application/x-protobuf"}
RASTER = frozenset({"png", "jpg", "jpeg", "webp", "avif"})
PMTILES_MAGIC = pmtiles.MAGIC
# Decoded PMTiles directories kept between requests (the root and the leaves in use).
DIRECTORY_CACHE = 64
# A tile bigger than this is a damaged file, not a map.
MAX_TILE = 16 << 20
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
    # Vector sets: the layer names the file's metadata lists (``vector_layers``), which the page styles.
    layers: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"/tiles/{self.name}/{{z}}/{{x}}/{{y}}"


def inspect_tiles(path: Path, name: str | None = None) -> TileSet:
    """Check that ``path`` is a readable MBTiles or PMTiles file; ConfigError says what is wrong."""
    name = name or path.stem
    if not NAME.match(name):
        raise ConfigError(f"tile set name {name!r}: use letters, digits, '-' and '_' (up to 64)")
    try:
        with path.open("rb") as f:
            head = f.read(pmtiles.HEADER_SIZE)
            if head.startswith(PMTILES_MAGIC):
                return _inspect_pmtiles(f, path, name)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    if head.startswith(b"SQLite format 3\x00"):
        return _inspect_mbtiles(path, name)
    raise ConfigError(f"{path}: neither an MBTiles (SQLite) nor a PMTiles file")


def _inspect_pmtiles(f: BinaryIO, path: Path, name: str) -> TileSet:
    """Header and root directory readable, so every request will not fail the same way."""
    try:
        f.seek(0)
        header = pmtiles.parse_header(f.read(pmtiles.HEADER_SIZE))
        f.seek(header.root_offset)
        root = pmtiles.decode_directory(f.read(header.root_length), header.internal_compression)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not root:
        raise ConfigError(f"{path}: the PMTiles file holds no tiles")
    layers: tuple[str, ...] = ()
    if header.tile_type == "pbf" and header.metadata_length <= pmtiles.MAX_DIRECTORY:
        f.seek(header.metadata_offset)
        layers = pmtiles.vector_layers(f.read(header.metadata_length), header.internal_compression)
    return TileSet(name, "pmtiles", header.tile_type, header.minzoom, header.maxzoom, layers)


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
    layers: tuple[str, ...] = ()
    if fmt in ("pbf", "mvt"):
        try:
            layers = pmtiles.layer_ids(json.loads(str(meta.get("json", "{}"))))
        except ValueError:
            layers = ()
    return TileSet(name, "mbtiles", fmt, int(zooms[0]), int(zooms[1]), layers)


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


class Directories:
    """Decoded PMTiles directories by file identity and place, the least recently used dropped first."""

    def __init__(self, size: int = DIRECTORY_CACHE) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[object, ...], tuple[pmtiles.Entry, ...]] = OrderedDict()
        self._lock = threading.Lock()  # requests read in the thread pool

    def read(self, f: BinaryIO, identity: tuple[object, ...], header: pmtiles.Header,
             span: pmtiles.Span) -> tuple[pmtiles.Entry, ...]:
        key = (*identity, span.offset, span.length)
        with self._lock:
            if (hit := self._entries.get(key)) is not None:
                self._entries.move_to_end(key)
                return hit
        f.seek(span.offset)
        entries = pmtiles.decode_directory(f.read(span.length), header.internal_compression)
        with self._lock:
            self._entries[key] = entries
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return entries


def _read_pmtiles_tile(path: Path, z: int, x: int, y: int,
                       directories: Directories) -> tuple[pmtiles.Header, bytes | None]:
    """The set's header and the tile at XYZ ``z/x/y`` (None when absent); ConfigError for a damaged file."""
    with path.open("rb") as f:
        # A replaced file (tiles add --replace renames a new one in) is a new identity: no stale directory.
        st = os.fstat(f.fileno())
        identity = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
        header = pmtiles.parse_header(f.read(pmtiles.HEADER_SIZE))
        wanted = pmtiles.tile_id(z, x, y)
        span = pmtiles.Span(header.root_offset, header.root_length, is_tile=False)
        for _ in range(pmtiles.MAX_DEPTH):
            found = pmtiles.locate(header, directories.read(f, identity, header, span), wanted)
            if found is None:
                return header, None
            if found.is_tile:
                if found.length > MAX_TILE:
                    raise ConfigError(f"tile {z}/{x}/{y} is larger than {MAX_TILE} bytes")
                f.seek(found.offset)
                data = f.read(found.length)
                if len(data) != found.length:
                    raise ConfigError("the PMTiles file ends inside a tile")
                return header, data
            span = found
    raise ConfigError("PMTiles leaf directories nested deeper than the format allows")


class LocalTiles:
    """The routes above over ``<data dir>/tiles``."""

    def __init__(self, data_dir: Path, tile_url: str = "") -> None:
        self._dir = tiles_dir(data_dir)
        self._data_dir = data_dir
        self._directories = Directories()
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
        if not NAME.match(name):
            return _missing("no such tile set")
        if (self._dir / f"{name}.pmtiles").is_file():
            return await self._pmtiles_tile(self._dir / f"{name}.pmtiles", z, x, y)
        path = self._dir / f"{name}.mbtiles"
        if not path.is_file():
            return _missing("no such tile set")
        if not _in_range(z, x, y):
            return _bad_tile()
        try:
            fmt, data = await run_in_threadpool(_read_tile, path, z, x, y)
        except sqlite3.Error:
            return _missing("the tile set cannot be read")
        if data is None or fmt not in MEDIA:
            return _missing("no tile there")
        # Vector tiles are stored gzipped by most tools: the browser unpacks them.
        headers = {"Content-Encoding": "gzip"} if fmt in ("pbf", "mvt") and data[:2] == b"\x1f\x8b" else {}
        return Response(data, media_type=MEDIA[fmt], headers=headers)

    async def _pmtiles_tile(self, path: Path, z: int, x: int, y: int) -> Response:
        if not _in_range(z, x, y):
            return _bad_tile()
        try:
            header, data = await run_in_threadpool(_read_pmtiles_tile, path, z, x, y, self._directories)
        except (OSError, ConfigError) as exc:
            log.warning("tile set %s cannot be read: %s", path.name, exc)
            return _missing("the tile set cannot be read")
        if data is None or header.tile_type not in MEDIA:
            return _missing("no tile there")
        headers = {"Content-Encoding": "gzip"} if header.tile_compression == "gzip" else {}
        return Response(data, media_type=MEDIA[header.tile_type], headers=headers)


def _in_range(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)


def _bad_tile() -> Response:
    return JSONResponse({"error": "bad_tile", "detail": "z, x or y out of range"}, status_code=400)


def _missing(detail: str) -> Response:
    return JSONResponse({"error": "not_found", "detail": detail}, status_code=404)
