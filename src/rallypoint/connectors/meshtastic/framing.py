"""The Meshtastic client-API stream framing (TCP port 4403 and serial), sans-IO.

A frame is ``0x94 0xC3``, a 16-bit big-endian length, then that many bytes of a ``FromRadio``
(node to us) or ``ToRadio`` (us to node) protobuf. Nodes also print debug text on serial lines
between frames, so anything before a frame start is skipped (counted as garbage), and a length
above the protocol's 512-byte maximum means we are not at a frame start: skip one byte and look
again rather than wait for bytes that will never form a frame.
"""

from __future__ import annotations

START1 = 0x94
START2 = 0xC3
HEADER_LEN = 4
MAX_FRAME = 512
# Sent before the first frame: enough START2 bytes that a node mid-frame resynchronises on our header.
WAKE = bytes([START2] * 32)


def encode_frame(payload: bytes) -> bytes:
    """``payload`` (a serialised ``ToRadio``) with its header; ``ValueError`` past 512 bytes."""
    if len(payload) > MAX_FRAME:
        raise ValueError(f"a Meshtastic frame carries at most {MAX_FRAME} bytes (got {len(payload)})")
    return bytes((START1, START2, len(payload) >> 8, len(payload) & 0xFF)) + payload


class FrameDecoder:
    """Bytes in (``receive_data``), frame payloads out (``next_frame`` until None).

    ``garbage_bytes`` counts bytes skipped while looking for a frame start; ``oversize`` counts
    headers that announced more than 512 bytes (skipped the same way).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage_bytes = 0
        self.oversize = 0

    def receive_data(self, data: bytes) -> None:
        """Append bytes read from the stream."""
        self._buf += data

    def next_frame(self) -> bytes | None:
        """The next complete frame's payload, or None until more bytes arrive."""
        buf = self._buf
        while True:
            start = buf.find(START1)
            if start < 0:
                self.garbage_bytes += len(buf)
                buf.clear()
                return None
            if start:
                self.garbage_bytes += start
                del buf[:start]
            if len(buf) < 2:
                return None
            if buf[1] != START2:
                self.garbage_bytes += 1
                del buf[:1]
                continue
            if len(buf) < HEADER_LEN:
                return None
            length = (buf[2] << 8) | buf[3]
            if length > MAX_FRAME:
                self.oversize += 1
                self.garbage_bytes += 1
                del buf[:1]
                continue
            if len(buf) < HEADER_LEN + length:
                return None
            payload = bytes(buf[HEADER_LEN:HEADER_LEN + length])
            del buf[:HEADER_LEN + length]
            return payload
