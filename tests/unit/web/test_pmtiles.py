"""The sans-IO PMTiles v3 reader (web/pmtiles.py) and the file walk over it (web/tiles.py)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pytest

from rallypoint.errors import ConfigError
from rallypoint.web import pmtiles
from rallypoint.web.tiles import Directories, _read_pmtiles_tile, inspect_tiles
from tests.support import pmtiles_file

FIXTURE = Path(__file__).parents[2] / "data" / "pmtiles" / "test_fixture_1.pmtiles"


def test_tile_ids_follow_the_hilbert_curve_of_the_reference() -> None:
    # The reference implementation's own values (js/test/v3.test.ts).
    assert [pmtiles.tile_id(*zxy) for zxy in [(0, 0, 0), (1, 0, 0), (1, 0, 1), (1, 1, 1), (1, 1, 0), (2, 0, 0)]] \
        == [0, 1, 2, 3, 4, 5]
    # Every tile of a zoom has its own id, inside that zoom's block.
    for z in range(6):
        ids = {pmtiles.tile_id(z, x, y) for x in range(1 << z) for y in range(1 << z)}
        first = ((1 << (2 * z)) - 1) // 3
        assert ids == set(range(first, first + (1 << (2 * z))))
    for bad in [(0, 1, 0), (1, 0, 2), (27, 0, 0), (-1, 0, 0)]:
        with pytest.raises(ValueError):
            pmtiles.tile_id(*bad)


def test_a_file_written_by_the_reference_tools_reads() -> None:
    data = FIXTURE.read_bytes()
    header = pmtiles.parse_header(data[:127])
    assert (header.root_offset, header.root_length, header.data_offset, header.data_length) == (127, 25, 399, 69)
    assert (header.internal_compression, header.tile_compression, header.tile_type) == ("gzip", "gzip", "pbf")
    root = pmtiles.decode_directory(data[header.root_offset:header.root_offset + header.root_length], "gzip")
    assert root == (pmtiles.Entry(tile_id=0, offset=0, length=69, run_length=1),)
    tile = _read_pmtiles_tile(FIXTURE, 0, 0, 0, Directories())[1]
    assert tile is not None and len(tile) == 69
    # A vector tile: field 3 (layer), length-delimited, holding the layer's name.
    assert gzip.decompress(tile)[0] == 0x1A
    assert _read_pmtiles_tile(FIXTURE, 1, 0, 0, Directories())[1] is None
    assert inspect_tiles(FIXTURE, "fixture").format == "pbf"


def test_runs_and_leaf_directories_are_walked(tmp_path: Path) -> None:
    tiles = {(z, x, y): f"{z}/{x}/{y}".encode() for z in range(4) for x in range(1 << z) for y in range(1 << z)}
    tiles[(3, 7, 7)] = tiles[(3, 7, 6)] = b"same"  # neighbours on the curve share one entry
    for leaf_size in (0, 4):
        path = tmp_path / f"set{leaf_size}.pmtiles"
        path.write_bytes(pmtiles_file.build(tiles, leaf_size=leaf_size))
        directories = Directories(size=3)  # smaller than the leaves: entries are dropped and read again
        for zxy, content in tiles.items():
            assert _read_pmtiles_tile(path, *zxy, directories)[1] == content, (leaf_size, zxy)
        assert _read_pmtiles_tile(path, 4, 0, 0, directories)[1] is None


def test_find_entry_covers_runs_and_leaves_only_up_to_their_end() -> None:
    entries = (pmtiles.Entry(3, 3, 1, 2), pmtiles.Entry(5, 5, 1, 2), pmtiles.Entry(9, 0, 10, 0))
    assert pmtiles.find_entry(entries, 4) == entries[0]
    assert pmtiles.find_entry(entries, 6) == entries[1]
    assert pmtiles.find_entry(entries, 7) is None
    assert pmtiles.find_entry(entries, 2) is None
    assert pmtiles.find_entry(entries, 1000) == entries[2]  # a leaf covers everything after it
    assert pmtiles.find_entry((), 0) is None


def _header(**fields: int) -> bytes:
    header = bytearray(pmtiles_file.build({(0, 0, 0): b"x"})[:127])
    for index, value in fields.items():
        header[int(index.removeprefix("b"))] = value
    return bytes(header)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"b7": 2}, "version 2"),
    ({"b97": 3}, "directory compression 'brotli'"),
    ({"b98": 4}, "tile compression 'zstd'"),
    ({"b99": 9}, "tile type 9"),
])
def test_headers_we_cannot_serve_are_refused_with_the_reason(fields: dict[str, int], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        pmtiles.parse_header(_header(**fields))
    with pytest.raises(ConfigError, match="not a PMTiles file"):
        pmtiles.parse_header(b"PMTiles\x03")


def test_damaged_directories_are_refused_not_crashed_on(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="truncated or malformed"):
        pmtiles.decode_directory(b"\x05\x01", "none")
    with pytest.raises(ConfigError, match="not valid gzip"):
        pmtiles.decode_directory(b"\x1f\x8bnot gzip", "gzip")
    with pytest.raises(ConfigError, match="truncated or malformed"):
        pmtiles.decode_directory(b"\xff" * 20, "none")
    # A file cut inside its tile data: the tile is refused, not served short.
    whole = pmtiles_file.build({(0, 0, 0): b"a tile of some length"})
    cut = tmp_path / "cut.pmtiles"
    cut.write_bytes(whole[:-5])
    with pytest.raises(ConfigError, match="ends inside a tile"):
        _read_pmtiles_tile(cut, 0, 0, 0, Directories())
    # A root directory pointing past the end of the file holds nothing readable.
    empty = tmp_path / "empty.pmtiles"
    empty.write_bytes(whole[:8] + struct.pack("<Q", 10_000) + whole[16:127])
    with pytest.raises(ConfigError):
        inspect_tiles(empty)


def test_vector_layer_names_come_from_the_metadata(tmp_path: Path) -> None:
    meta = {"vector_layers": [{"id": "water"}, {"id": ""}, {"id": 7}, "roads", {"id": "x" * 101}, {"id": "roads"}]}
    assert pmtiles.vector_layers(gzip.compress(json.dumps(meta).encode()), "gzip") == ("water", "roads")
    assert pmtiles.vector_layers(b"not json", "none") == ()
    assert pmtiles.vector_layers(b"\x1f\x8bbroken", "gzip") == ()
    assert pmtiles.layer_ids({"vector_layers": {"id": "water"}}) == () and pmtiles.layer_ids([]) == ()
    path = tmp_path / "vector.pmtiles"
    path.write_bytes(pmtiles_file.build({(0, 0, 0): b"tile"}, tile_type="pbf", metadata=meta))
    assert inspect_tiles(path).layers == ("water", "roads")
    # The reference fixture names its one layer (tippecanoe's, after the input file).
    assert len(inspect_tiles(FIXTURE).layers) == 1
