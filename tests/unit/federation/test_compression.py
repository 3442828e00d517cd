"""Per-message dictionary compression and the stream helpers."""

from __future__ import annotations

import pytest

from rallypoint.protocol.compression import CompressionBomb, MessageCodec, StreamCompressor, StreamDecompressor

PLI = (b'<event version="2.0" uid="ANDROID-1" type="a-f-G-U-C" how="m-g"><point lat="1" lon="2"/>'
       b'<detail><contact endpoint="*:-1:stcp" callsign="A1"/>'
       b'<__group role="Team Member" name="Cyan"/></detail></event>')


def test_dictionary_beats_plain_and_round_trips() -> None:
    codec = MessageCodec()
    packed = codec.compress(PLI)
    assert codec.decompress(packed) == PLI
    assert len(packed) < len(MessageCodec(b"unrelated dictionary text" * 4).compress(PLI))


def test_decompress_refuses_oversized_output() -> None:
    codec = MessageCodec()
    with pytest.raises(ValueError, match="size limit"):
        codec.decompress(codec.compress(b"x" * 10_000), max_size=1000)


def test_stream_round_trip_and_second_message_is_cheaper() -> None:
    tx, rx = StreamCompressor(), StreamDecompressor()
    first, second = tx.compress(PLI), tx.compress(PLI)
    assert rx.decompress(first) == PLI and rx.decompress(second) == PLI
    assert len(second) < len(first) / 3


def test_stream_bomb_is_refused() -> None:
    tx, rx = StreamCompressor(), StreamDecompressor()
    with pytest.raises(CompressionBomb):
        rx.decompress(tx.compress(b"\0" * 100_000))
