"""Cheap per-chunk counting of delivered events and extraction of send stamps.

Receivers must stay far cheaper than the server they measure, so nothing here parses XML or
protobuf: XML deliveries are occurrences of ``</event>`` (with a few bytes carried over so a
terminator split across two reads still counts once), protobuf deliveries are walked frame
headers (``0xBF varint``), and latency comes from ``rpbench@<digits>`` found with ``bytes.find``.
A delivery of the run's own traffic is an occurrence of the run's uid prefix (``RPBENCH-<run>-``,
once per event in either wire format), so other traffic on the server (a demo, real clients,
another bench) is received but not counted as delivered.
"""

from __future__ import annotations

from .events import PROTO_MAGIC, STAMP_DIGITS, STAMP_MARK, XML_END

_MAX_VARINT = 10


class NeedleCounter:
    """Counts occurrences of a byte string across arbitrarily split reads."""

    __slots__ = ("_carry", "_keep", "_needle")

    def __init__(self, needle: bytes) -> None:
        if not needle:
            raise ValueError("needle must not be empty")
        self._needle = needle
        self._keep = len(needle) - 1
        self._carry = b""

    def feed(self, data: bytes) -> int:
        """Return how many occurrences ``data`` completes."""
        needle, keep = self._needle, self._keep
        n = data.count(needle)
        carry = self._carry
        if data.endswith(needle):
            # The common case for terminators: reads end where a sender's write ended.
            if carry:
                n += (carry + data[:keep]).count(needle)
                self._carry = b""
            return n
        if carry:
            # carry and data[:keep] are each shorter than the needle, so any match here
            # straddles the boundary and was not counted by either side alone.
            n += (carry + data[:keep]).count(needle)
        if len(data) >= keep:
            self._carry = data[-keep:] if keep else b""
        else:
            self._carry = (carry + data)[-keep:]
        return n


class XmlCounter(NeedleCounter):
    """Counts ``</event>`` terminators across arbitrarily split reads."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(XML_END)


class ProtoFrameCounter:
    """Counts TAK streaming frames (``0xBF varint(len) payload``) across split reads.

    Garbage before a magic byte is skipped, as TAK clients do; a malformed length makes the
    counter rescan from the next byte.
    """

    __slots__ = ("_header", "_skip")

    def __init__(self) -> None:
        self._skip = 0  # payload bytes of the current frame still to come
        self._header = b""  # an incomplete frame header held over from the previous read

    def feed(self, data: bytes) -> int:
        """Return how many frames ``data`` completes."""
        if self._header:
            data = self._header + data
            self._header = b""
        size = len(data)
        pos = 0
        frames = 0
        skip = self._skip
        while True:
            if skip:
                avail = size - pos
                if avail < skip:
                    self._skip = skip - avail
                    return frames
                pos += skip
                skip = 0
                frames += 1
            if pos >= size:
                break
            if data[pos] != PROTO_MAGIC:
                nxt = data.find(b"\xbf", pos)
                if nxt < 0:
                    break
                pos = nxt
            length = 0
            shift = 0
            i = pos + 1
            complete = False
            while i < size and i - pos <= _MAX_VARINT:
                b = data[i]
                length |= (b & 0x7F) << shift
                shift += 7
                i += 1
                if not b & 0x80:
                    complete = True
                    break
            if not complete:
                if i >= size and i - pos <= _MAX_VARINT:
                    self._header = data[pos:]
                    break
                pos += 1  # bad varint: rescan for the next magic byte
                continue
            pos = i
            if length == 0:
                frames += 1
                continue
            skip = length
        self._skip = skip
        return frames


def read_stamp(data: bytes, pos: int) -> int | None:
    """The send stamp (ns) whose marker starts at ``pos``; None if the read cut it short."""
    start = pos + len(STAMP_MARK)
    digits = data[start : start + STAMP_DIGITS]
    if len(digits) == STAMP_DIGITS and digits.isdigit():
        return int(digits)
    return None
