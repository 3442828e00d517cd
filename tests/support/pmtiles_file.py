"""Builds PMTiles version 3 files for tests: tiles by XYZ, optional leaf directories, gzipped directories.

Written from the format's description (https://github.com/protomaps/PMTiles, ``spec/v3/spec.md``): the
header, directories of varint columns (id deltas, run lengths, lengths, offsets + 1 or 0 for
"right after the previous one"), runs of identical consecutive tiles, and leaves when asked.
"""

from __future__ import annotations

import gzip
import json
import struct

from rallypoint.web.pmtiles import tile_id

TYPES = {"pbf": 1, "png": 2, "jpg": 3, "webp": 4}


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _directory(entries: list[tuple[int, int, int, int]]) -> bytes:
    """Entries (tile_id, offset, length, run_length), gzipped as the header says."""
    out = bytearray(_varint(len(entries)))
    last = 0
    for tid, _, _, _ in entries:
        out += _varint(tid - last)
        last = tid
    for _, _, _, run in entries:
        out += _varint(run)
    for _, _, length, _ in entries:
        out += _varint(length)
    for i, (_, offset, _, _) in enumerate(entries):
        prev = entries[i - 1] if i else None
        out += _varint(0 if prev and offset == prev[1] + prev[2] else offset + 1)
    return gzip.compress(bytes(out))


def build(tiles: dict[tuple[int, int, int], bytes], tile_type: str = "png", leaf_size: int = 0,
          tile_gzip: bool = False, metadata: dict[str, object] | None = None) -> bytes:
    """A whole PMTiles file holding ``tiles`` ({(z, x, y): bytes}); ``leaf_size`` > 0 puts entries in leaves.

    With ``tile_gzip`` the tiles are given already gzipped and the header says so.
    """
    data = bytearray()
    entries: list[tuple[int, int, int, int]] = []
    for tid, content in sorted((tile_id(*zxy), content) for zxy, content in tiles.items()):
        if entries and entries[-1][0] + entries[-1][3] == tid and data[entries[-1][1]:] == content:
            first, offset, length, run = entries[-1]
            entries[-1] = (first, offset, length, run + 1)  # a run of the same bytes
            continue
        entries.append((tid, len(data), len(content), 1))
        data += content
    leaves = bytearray()
    if leaf_size:
        root = []
        for start in range(0, len(entries), leaf_size):
            chunk = entries[start:start + leaf_size]
            leaf = _directory(chunk)
            root.append((chunk[0][0], len(leaves), len(leaf), 0))
            leaves += leaf
        root_dir = _directory(root)
    else:
        root_dir = _directory(entries)
    packed_metadata = gzip.compress(json.dumps(metadata or {"name": "test"}).encode())
    zooms = [z for z, _, _ in tiles]
    root_at = 127
    meta_at = root_at + len(root_dir)
    leaves_at = meta_at + len(packed_metadata)
    data_at = leaves_at + len(leaves)
    header = b"PMTiles" + bytes([3]) + struct.pack(
        "<11Q", root_at, len(root_dir), meta_at, len(packed_metadata), leaves_at, len(leaves), data_at, len(data),
        len(tiles), len(entries), len(entries),
    ) + bytes([0, 2, 2 if tile_gzip else 1, TYPES[tile_type], min(zooms), max(zooms)]) + struct.pack(
        "<iiiiBii", -1800000000, -850000000, 1800000000, 850000000, min(zooms), 0, 0,
    )
    assert len(header) == 127
    return header + root_dir + packed_metadata + bytes(leaves) + bytes(data)


def _field(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _field(number, 2) + _varint(len(payload)) + payload


def mvt_square(layer: str, extent: int = 4096) -> bytes:
    """A Mapbox Vector Tile (spec 2.1) whose layer ``layer`` holds one polygon covering the whole tile."""
    def zigzag(n: int) -> int:
        return (n << 1) ^ (n >> 31)
    # MoveTo(0, 0), LineTo x3 around the tile (clockwise in tile coordinates: an outer ring), ClosePath.
    commands = [1 | 1 << 3, 0, 0, 2 | 3 << 3, zigzag(extent), 0, 0, zigzag(extent), zigzag(-extent), 0, 7 | 1 << 3]
    geometry = b"".join(_varint(c) for c in commands)
    feature = _field(1, 0) + _varint(1) + _field(3, 0) + _varint(3) + _bytes_field(4, geometry)
    body = (_field(15, 0) + _varint(2) + _bytes_field(1, layer.encode()) + _bytes_field(2, feature)
            + _field(5, 0) + _varint(extent))
    return _bytes_field(3, body)
