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
          tile_gzip: bool = False) -> bytes:
    """A whole PMTiles file holding ``tiles`` ({(z, x, y): bytes}); ``leaf_size`` > 0 puts entries in leaves."""
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
    metadata = gzip.compress(json.dumps({"name": "test"}).encode())
    zooms = [z for z, _, _ in tiles]
    root_at = 127
    meta_at = root_at + len(root_dir)
    leaves_at = meta_at + len(metadata)
    data_at = leaves_at + len(leaves)
    header = b"PMTiles" + bytes([3]) + struct.pack(
        "<11Q", root_at, len(root_dir), meta_at, len(metadata), leaves_at, len(leaves), data_at, len(data),
        len(tiles), len(entries), len(entries),
    ) + bytes([0, 2, 2 if tile_gzip else 1, TYPES[tile_type], min(zooms), max(zooms)]) + struct.pack(
        "<iiiiBii", -1800000000, -850000000, 1800000000, 850000000, min(zooms), 0, 0,
    )
    assert len(header) == 127
    return header + root_dir + metadata + bytes(leaves) + bytes(data)
