"""Compression for narrow links: per-message zstd with a shared dictionary, and streaming helpers.

Per-message compression suits datagrams and links that may drop or reorder messages: each message
decompresses on its own. Small CoT messages barely compress alone, so both ends share a dictionary:
by default a zstd *raw content* dictionary made of typical CoT text (:data:`COT_DICTIONARY`), which
needs no training step and no binary file; :func:`train_dictionary` builds a trained one from samples.
A stream compressor (zlib, sync-flushed per message) suits ordered, reliable links: it learns from
everything sent before, so repeated positions cost a few dozen bytes.
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


class StreamCompressor:
    """Deflate over a whole ordered stream; each ``compress`` call is flushed so it can be sent at once."""

    def __init__(self, level: int = 9) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, -15, 9)

    def compress(self, message: bytes) -> bytes:
        """The bytes to send for ``message`` (decodable once everything before it arrived)."""
        return self._z.compress(message) + self._z.flush(zlib.Z_SYNC_FLUSH)


class StreamDecompressor:
    """The receiving side of :class:`StreamCompressor`; output per call is bounded."""

    def __init__(self, max_size: int = 256 * 1024) -> None:
        self._z = zlib.decompressobj(-15)
        self._max = max_size

    def decompress(self, data: bytes) -> bytes:
        """Everything ``data`` completes; raises ``ValueError`` past ``max_size`` (a compression bomb)."""
        out = self._z.decompress(data, self._max)
        if self._z.unconsumed_tail:
            raise ValueError("decompressed message exceeds the size limit")
        return out
