"""Property tests of the stream compressor: the budget bound holds, and arbitrary input never escapes the inflater.

``deflate_bound`` is what a link budget charges before compressing, so it must hold for every
write of every stream, whatever was written before; the inflater must turn any byte sequence
into output, a ``ValueError``, or a ``CompressionBomb``, never more than it allows.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rallypoint.protocol.compression import (
    CompressionBomb,
    StreamCompressor,
    StreamDecompressor,
    deflate_bound,
)

# Incompressible bytes, runs, and the high bytes that cost 9 bits in a fixed Huffman block.
chunks = st.one_of(
    st.binary(max_size=5000),
    st.binary(min_size=1, max_size=4).map(lambda b: b * 700),
    st.lists(st.integers(144, 255), max_size=3000).map(bytes),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(chunks, min_size=1, max_size=12), st.data())
def test_every_write_fits_the_bound_and_round_trips(writes: list[bytes], data: st.DataObject) -> None:
    tx, rx = StreamCompressor(), StreamDecompressor()
    for write in writes:
        out = tx.compress(write)
        assert len(out) <= deflate_bound(len(write))
        # Delivered in arbitrary pieces, the receiver gets back exactly what was written.
        cut = data.draw(st.integers(0, len(out)))
        got = rx.decompress(out[:cut]) + rx.decompress(out[cut:])
        assert got == write


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_arbitrary_input_is_output_or_a_value_error(pieces: list[bytes]) -> None:
    rx = StreamDecompressor(slack=1000, max_pending=4096)
    fed = 0
    produced = 0
    try:
        for piece in pieces:
            fed += len(piece)
            produced += len(rx.decompress(piece))
    except ValueError:  # corrupt, or a CompressionBomb (a subclass)
        return
    # Whatever came out stayed within the allowance: 256 bytes per input byte plus the slack.
    assert produced <= fed * 256 + 1000


def test_a_bomb_is_stopped_near_its_allowance() -> None:
    bomb = StreamCompressor().compress(b"\0" * (8 * 1024 * 1024))
    rx = StreamDecompressor(slack=0)
    rx.feed(bomb)
    produced = 0
    try:
        while chunk := rx.pull(64 * 1024):
            produced += len(chunk)
    except CompressionBomb:
        assert produced <= len(bomb) * 256
        return
    raise AssertionError("8 MiB of zeros inflated without being called a bomb")
