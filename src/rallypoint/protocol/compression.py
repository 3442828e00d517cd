"""Compression for narrow links: per-message zstd with a shared dictionary, and streaming helpers.

Per-message compression suits datagrams and links that may drop or reorder messages: each message
decompresses on its own. Small CoT messages barely compress alone, so both ends share a dictionary:
by default a zstd *raw content* dictionary made of typical CoT text (:data:`COT_DICTIONARY`), which
needs no training step and no binary file; :func:`train_dictionary` builds a trained one from samples.
A stream compressor (raw deflate, sync-flushed per write) suits ordered, reliable links: it learns
from everything sent before, so repeated positions cost a few dozen bytes. TAK streams that
negotiate it carry one deflate stream per direction (docs/protocol.md).
"""

from __future__ import annotations

import zlib

import zstandard

# Typical PLI content (XML and the strings protobuf carries): matches for the compressor to refer to.
COT_DICTIONARY = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><event version="2.0" uid="ANDROID-'
    b'" type="a-f-G-U-C" how="m-g" time="2024-01-01T00:00:00.000Z" start="2024-01-01T00:00:00.000Z" '
    b'stale="2024-01-01T00:00:00.000Z"><point lat="" lon="" hae="9999999.0" ce="9999999.0" le="9999999.0"/>'
    b'<detail><takv device="" platform="ATAK-CIV" os="" version="4.10.0.1"/>'
    b'<contact endpoint="*:-1:stcp" phone="" callsign=""/><uid Droid=""/>'
    b'<precisionlocation altsrc="GPS" geopointsrc="GPS"/><__group role="Team Member" name="Cyan"/>'
    b'<status battery="100"/><track course="0.0" speed="0.0"/><_flow-tags_ /></detail></event>'
    b"a-f-G-U-Cm-gh-g-i-g-oh-e*:-1:stcpATAK-CIVTeam MemberCyanWhiteYellowGreenBlueRedGPSDTED0"
    b"b-t-fAll Chat RoomsRootContactGroupGeoChat.t-x-d-dp-pb-m-p-s-m"
)


def train_dictionary(samples: list[bytes], size: int = 4096) -> bytes:
    """A trained zstd dictionary from sample messages (needs a few hundred varied samples)."""
    return bytes(zstandard.train_dictionary(size, list[bytes | bytearray | memoryview](samples)).as_bytes())


class MessageCodec:
    """Compresses and decompresses single messages with a dictionary both ends share."""

    def __init__(self, dictionary: bytes = COT_DICTIONARY, *, level: int = 19, trained: bool = False) -> None:
        kind = zstandard.DICT_TYPE_FULLDICT if trained else zstandard.DICT_TYPE_RAWCONTENT
        self._dict = zstandard.ZstdCompressionDict(dictionary, dict_type=kind)
        self._c = zstandard.ZstdCompressor(
            level=level, dict_data=self._dict, write_checksum=False, write_content_size=True, write_dict_id=False
        )
        self._d = zstandard.ZstdDecompressor(dict_data=self._dict)

    def compress(self, message: bytes) -> bytes:
        """One self-contained compressed message."""
        return bytes(self._c.compress(message))

    def decompress(self, data: bytes, *, max_size: int = 256 * 1024) -> bytes:
        """The original message; raises ``ValueError`` (``zstandard.ZstdError``) for corrupt or oversized input."""
        declared = int(zstandard.frame_content_size(data))
        if declared > max_size:
            raise ValueError(f"compressed message declares {declared} bytes, over the size limit {max_size}")
        return bytes(self._d.decompress(data, max_output_size=max_size))


# Sender parameters: an 8 KiB window and a small hash table (about 64 KiB of state per compressing
# connection instead of zlib's default 256 KiB) cost ~3 B per position report against a 32 KiB
# window (bench/bytes_per_position.py). The receiver always accepts any window up to 32 KiB.
_WBITS = 13
_MEM_LEVEL = 6
_LEVEL = 6


def deflate_bound(size: int) -> int:
    """The most bytes :meth:`StreamCompressor.compress` can return for ``size`` input bytes.

    zlib's conservative ``deflateBound`` for non-default window/memory parameters is at most
    ``n + n/8 + n/64 + 7`` (whether it falls back to fixed-Huffman or stored blocks), and the
    sync flush adds one empty stored block (at most 5 bytes). Nothing is carried over from earlier
    messages: after a sync flush the output is byte-aligned and complete. Link budgets charge this
    bound before compressing and give back the difference afterwards.
    """
    return size + (size >> 3) + (size >> 6) + 16


class StreamCompressor:
    """Deflate over a whole ordered stream; each ``compress`` call is sync-flushed so it can be sent at once."""

    def __init__(self, level: int = _LEVEL, *, wbits: int = _WBITS, mem_level: int = _MEM_LEVEL) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, -wbits, mem_level)
        self.bytes_in = 0
        self.bytes_out = 0

    def compress(self, data: bytes) -> bytes:
        """The bytes to send for ``data`` (decodable once everything before it arrived)."""
        out = self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)
        self.bytes_in += len(data)
        self.bytes_out += len(out)
        return out


class CompressionBomb(ValueError):
    """The peer's compressed input expands beyond what any honest sender produces."""


class StreamDecompressor:
    """The receiving side of :class:`StreamCompressor`, with bounded memory and work.

    ``feed`` only queues compressed bytes (at most ``max_pending`` of them); ``pull`` inflates at
    most ``max_out`` bytes at a time, so a caller holds only what it can frame. Each compressed
    byte received allows ``max_ratio`` output bytes (unused allowance is kept up to ``slack``
    bytes, so one large, very repetitive message still passes): input that expands further is a
    compression bomb (:class:`CompressionBomb`). A corrupt stream, or one the peer ended (deflate's
    final block: the stream is never finished in this protocol), raises ``ValueError``.
    """

    def __init__(self, *, max_ratio: int = 256, slack: int = 1024 * 1024, max_pending: int = 1024 * 1024) -> None:
        self._z = zlib.decompressobj(-15)
        self._tail = b""
        self._ratio = max_ratio
        self._slack = slack
        self._max_pending = max_pending
        self._allowance = 0
        # The last pull stopped at its output limit: inflate may hold output even with no input left.
        self._full = False
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def pending(self) -> bool:
        """Whether ``pull`` may return more without new input."""
        return bool(self._tail) or self._full

    @property
    def pending_bytes(self) -> int:
        """Compressed bytes received and not inflated yet."""
        return len(self._tail)

    def feed(self, data: bytes) -> None:
        """Queue compressed bytes; ``ValueError`` when more than ``max_pending`` wait uninflated."""
        if len(self._tail) + len(data) > self._max_pending:
            raise ValueError(f"more than {self._max_pending} compressed bytes waiting")
        self._tail = self._tail + data if self._tail else data
        self.bytes_in += len(data)
        self._allowance = min(self._allowance + len(data) * self._ratio, self._slack + len(data) * self._ratio)

    def pull(self, max_out: int) -> bytes:
        """Up to ``max_out`` inflated bytes (``b""``: everything received so far is inflated)."""
        if not self.pending:
            return b""
        if self._z.eof:
            raise ValueError("data after the end of the compressed stream")
        # Ask for one byte more than allowed: getting it proves the input expands too far.
        want = max(1, min(max_out, self._allowance + 1))
        try:
            out = self._z.decompress(self._tail, want)
        except zlib.error as exc:
            raise ValueError(f"corrupt compressed stream: {exc}") from None
        self._tail = self._z.unconsumed_tail
        self._full = len(out) == want
        if len(out) > self._allowance:
            raise CompressionBomb(f"compressed input expands more than {self._ratio} times")
        self._allowance -= len(out)
        self.bytes_out += len(out)
        if self._z.eof:
            raise ValueError("the peer ended the compressed stream")
        return out

    def decompress(self, data: bytes) -> bytes:
        """Everything ``data`` completes, at most ``max_pending`` bytes at once (a convenience for tests)."""
        self.feed(data)
        out = bytearray()
        while chunk := self.pull(self._max_pending):
            out += chunk
            if len(out) > self._max_pending:
                raise CompressionBomb("decompressed data exceeds the size limit")
        return bytes(out)
