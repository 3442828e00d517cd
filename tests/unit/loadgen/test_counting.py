"""Counting deliveries across arbitrary read boundaries, and reading send stamps."""

from __future__ import annotations

import pytest

from rallypoint.loadgen.counting import ProtoFrameCounter, XmlCounter, read_stamp
from rallypoint.loadgen.events import STAMP_MARK, frame_payload


def _xml_stream(n: int) -> bytes:
    return b"".join(b'<event uid="u%d"><detail/></event>\n' % i for i in range(n))


def _feed_in_pieces(counter: XmlCounter | ProtoFrameCounter, data: bytes, cuts: list[int]) -> int:
    total = 0
    prev = 0
    for cut in [*cuts, len(data)]:
        total += counter.feed(data[prev:cut])
        prev = cut
    return total


def test_xml_counter_counts_whole_reads() -> None:
    assert XmlCounter().feed(_xml_stream(5)) == 5


@pytest.mark.parametrize("cut", range(1, 80))
def test_xml_counter_counts_terminator_split_at_any_point(cut: int) -> None:
    data = _xml_stream(3)
    assert _feed_in_pieces(XmlCounter(), data, [cut]) == 3


def test_xml_counter_handles_reads_shorter_than_the_terminator() -> None:
    data = _xml_stream(4)
    cuts = list(range(1, len(data)))  # one byte per read
    assert _feed_in_pieces(XmlCounter(), data, cuts) == 4


def test_xml_counter_does_not_double_count_after_a_terminator_ends_a_read() -> None:
    counter = XmlCounter()
    assert counter.feed(b"<event></event>") == 1
    assert counter.feed(b"</event>") == 1
    assert counter.feed(b"<event/>") == 0


def _proto_stream(sizes: list[int]) -> bytes:
    # Payloads full of 0xBF make sure the counter walks lengths instead of scanning for magic.
    return b"".join(frame_payload(b"\xbf" * size) for size in sizes)


def test_proto_counter_counts_frames_with_multibyte_lengths() -> None:
    sizes = [0, 1, 127, 128, 300, 20000]
    assert ProtoFrameCounter().feed(_proto_stream(sizes)) == len(sizes)


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 130, 131, 132, 133, 134, 500])
def test_proto_counter_counts_across_split_reads(cut: int) -> None:
    data = _proto_stream([127, 300, 5])
    assert _feed_in_pieces(ProtoFrameCounter(), data, [cut]) == 3


def test_proto_counter_byte_by_byte() -> None:
    data = _proto_stream([200, 3, 1000])
    assert _feed_in_pieces(ProtoFrameCounter(), data, list(range(1, len(data)))) == 3


def test_proto_counter_skips_garbage_before_magic() -> None:
    data = b"junk\n" + _proto_stream([10, 20])
    assert ProtoFrameCounter().feed(data) == 2


def test_read_stamp_reads_digits_after_marker() -> None:
    data = b"<remarks>" + STAMP_MARK + b"1712345678901234567</remarks>"
    assert read_stamp(data, data.find(STAMP_MARK)) == 1712345678901234567


def test_read_stamp_rejects_a_stamp_cut_by_the_read() -> None:
    data = b"<remarks>" + STAMP_MARK + b"171234567"
    assert read_stamp(data, data.find(STAMP_MARK)) is None
