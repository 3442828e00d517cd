"""PMTiles version 3, sans-IO: the header, directories and the tile lookup, from bytes the caller read.

The server answers ``/tiles/{name}/{z}/{x}/{y}`` from a PMTiles file as it does from an MBTiles one, so
the page and every other client read plain XYZ tiles and need no PMTiles reader of their own. This
module never touches a file: :func:`locate` says which byte range to read next (a leaf directory or
the tile), and the caller reads it and asks again. Layout: https://github.com/protomaps/PMTiles
(``spec/v3/spec.md``).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

from rallypoint.errors import ConfigError

HEADER_SIZE = 127
MAGIC = b"PMTiles"
# Directory and tile compression codes of the header. Only those the standard library reads are served.
COMPRESSION = {0: "unknown", 1: "none", 2: "gzip", 3: "brotli", 4: "zstd"}
READABLE = frozenset({"none", "gzip"})
TILE_TYPES = {1: "pbf", 2: "png", 3: "jpg", 4: "webp", 5: "avif"}
# Hilbert ids of zoom 27 and beyond pass 2^53; no tile set goes that deep.
MAX_ZOOM = 26
# The root and at most two levels of leaf directories, as the reference readers walk them.
MAX_DEPTH = 3
# Directories are small (the root fits in 16 KiB by the spec); a bigger one is refused before unpacking.
MAX_DIRECTORY = 64 << 20
# Vector layers the page styles; a file naming more is drawn by its first ones.
MAX_LAYERS = 100


@dataclass(frozen=True)
class Header:
    """The fields of a PMTiles v3 header that serving tiles needs."""

    root_offset: int
    root_length: int
    metadata_offset: int
    metadata_length: int
    leaf_offset: int
    leaf_length: int
    data_offset: int
    data_length: int
    internal_compression: str
    tile_compression: str
    tile_type: str
    minzoom: int
    maxzoom: int


@dataclass(frozen=True)
class Entry:
    """One directory entry: ``run_length`` tiles from ``tile_id`` share the bytes, 0 means a leaf directory."""

    tile_id: int
    offset: int
    length: int
    run_length: int


@dataclass(frozen=True)
class Span:
    """A byte range of the file: a directory to read next, or the tile itself."""

    offset: int
    length: int
    is_tile: bool


def parse_header(data: bytes) -> Header:
    """The header from the file's first 127 bytes; ConfigError says why it is not one we serve."""
    if len(data) < HEADER_SIZE or not data.startswith(MAGIC):
        raise ConfigError("not a PMTiles file")
    if data[7] != 3:
        raise ConfigError(f"PMTiles version {data[7]}, only version 3 is read")
    root_offset, root_length, metadata_offset, metadata_length = struct.unpack_from("<4Q", data, 8)
    leaf_offset, leaf_length = struct.unpack_from("<2Q", data, 40)
    data_offset, data_length = struct.unpack_from("<2Q", data, 56)
    internal = COMPRESSION.get(data[97], str(data[97]))
    tiles = COMPRESSION.get(data[98], str(data[98]))
    if internal not in READABLE:
        raise ConfigError(f"PMTiles directory compression {internal!r} is not read (use none or gzip)")
    if tiles not in READABLE | {"unknown"}:
        raise ConfigError(f"PMTiles tile compression {tiles!r} is not served (use none or gzip)")
    kind = TILE_TYPES.get(data[99])
    if kind is None:
        raise ConfigError(f"PMTiles tile type {data[99]} is not one the picture knows")
    if root_length > MAX_DIRECTORY:
        raise ConfigError("PMTiles root directory is too large")
    return Header(root_offset, root_length, metadata_offset, metadata_length, leaf_offset, leaf_length,
                  data_offset, data_length,
                  internal, tiles, kind, data[100], data[101])


def tile_id(z: int, x: int, y: int) -> int:
    """The Hilbert tile id of XYZ ``z/x/y``: the count of tiles at lower zooms plus the curve's index."""
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 1 << z and 0 <= y < 1 << z):
        raise ValueError(f"tile {z}/{x}/{y} is out of range")
    acc = ((1 << (2 * z)) - 1) // 3
    s = 1 << z
    while s > 1:
        s >>= 1
        rx, ry = x & s, y & s
        acc += ((3 * rx) ^ ry) * s
        if ry == 0:
            x, y = (s - 1 - y, s - 1 - x) if rx else (y, x)
    return acc


def _varints(data: bytes, count: int, pos: int) -> tuple[list[int], int]:
    values = []
    for _ in range(count):
        value = shift = 0
        while True:
            if pos >= len(data) or shift > 63:
                raise ConfigError("PMTiles directory is truncated or malformed")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        values.append(value)
    return values, pos


def _unpack(data: bytes, compression: str, what: str) -> bytes:
    if compression != "gzip":
        return data
    try:
        # Bounded: a part that unpacks past the cap is refused rather than filling memory.
        inflater = zlib.decompressobj(wbits=31)
        data = inflater.decompress(data, MAX_DIRECTORY)
        if inflater.unconsumed_tail:
            raise ConfigError(f"PMTiles {what} unpacks too large")
    except zlib.error as exc:
        raise ConfigError(f"PMTiles {what} is not valid gzip ({exc})") from exc
    return data


def vector_layers(data: bytes, compression: str) -> tuple[str, ...]:
    """The ``vector_layers`` ids of the JSON metadata (empty when it names none or is not JSON)."""
    try:
        meta = json.loads(_unpack(data, compression, "metadata"))
    except (ValueError, ConfigError):
        return ()
    return layer_ids(meta)


def layer_ids(meta: object) -> tuple[str, ...]:
    """The layer ids of a TileJSON-like ``{"vector_layers": [{"id": ...}]}``, as MBTiles and PMTiles keep them."""
    layers = meta.get("vector_layers") if isinstance(meta, dict) else None
    if not isinstance(layers, list):
        return ()
    ids = (layer.get("id") for layer in layers[:MAX_LAYERS] if isinstance(layer, dict))
    return tuple(i for i in ids if isinstance(i, str) and 0 < len(i) <= 100)


def decode_directory(data: bytes, compression: str) -> tuple[Entry, ...]:
    """The entries of a directory as stored (``compression`` from the header), in tile id order."""
    data = _unpack(data, compression, "directory")
    (count,), pos = _varints(data, 1, 0)
    if count > len(data):
        raise ConfigError("PMTiles directory is truncated or malformed")
    deltas, pos = _varints(data, count, pos)
    runs, pos = _varints(data, count, pos)
    lengths, pos = _varints(data, count, pos)
    offsets, pos = _varints(data, count, pos)
    entries: list[Entry] = []
    last_id = 0
    for i in range(count):
        last_id += deltas[i]
        # An offset of 0 after the first entry means "right after the previous entry's bytes".
        offset = entries[-1].offset + entries[-1].length if offsets[i] == 0 and i > 0 else offsets[i] - 1
        if offset < 0:
            raise ConfigError("PMTiles directory is truncated or malformed")
        entries.append(Entry(last_id, offset, lengths[i], runs[i]))
    return tuple(entries)


def find_entry(entries: tuple[Entry, ...], wanted: int) -> Entry | None:
    """The entry holding tile id ``wanted``: an exact id, a run that covers it, or the leaf before it."""
    lo, hi = 0, len(entries) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if entries[mid].tile_id < wanted:
            lo = mid + 1
        elif entries[mid].tile_id > wanted:
            hi = mid - 1
        else:
            return entries[mid]
    if hi >= 0:
        before = entries[hi]
        if before.run_length == 0 or wanted - before.tile_id < before.run_length:
            return before
    return None


def locate(header: Header, entries: tuple[Entry, ...], wanted: int) -> Span | None:
    """Where to read next for tile id ``wanted`` in a directory: the tile's bytes, a leaf, or None."""
    entry = find_entry(entries, wanted)
    if entry is None or entry.length == 0:
        return None
    if entry.run_length > 0:
        return Span(header.data_offset + entry.offset, entry.length, is_tile=True)
    if entry.length > MAX_DIRECTORY:
        raise ConfigError("PMTiles leaf directory is too large")
    return Span(header.leaf_offset + entry.offset, entry.length, is_tile=False)
