"""Byte-level stream framing for CoT XML and TAK protocol 1 (0xBF varint-length) streams.

Both framers work on ``bytes`` with ``find`` (never on decoded text), keep at most one frame's
worth of data between drains, and recover from garbage or oversized frames by discarding and
resynchronising. ``next_frame`` raises a non-fatal ``RemoteProtocolError`` (often
``LimitExceeded``) to report something it discarded; the framer stays usable afterwards.
"""

from __future__ import annotations

import re

from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.protocol.limits import Limits

_START = b"<event"
_START_LEN = len(_START)
_END = b"</event>"
# Bytes that may follow "<event" in a real start tag (anything else, e.g. "<events", is not one).
_AFTER_START = frozenset(b" \t\r\n>/")
# Bytes kept at the end of the buffer while searching, so a tag split across reads is found.
_TAIL = max(len(_START), len(_END) - 1)
_MAGIC = 0xBF
_MAX_DECLARATION = 512
# What may legitimately sit between XML events: whitespace, declarations, ATAK's <auth> document.
_BETWEEN_EVENTS = re.compile(rb"<\?xml[^>]*\?>|<auth\b.*?</auth>|<auth\b[^>]*/>|\s+", re.DOTALL)
_MAX_VARINT = 10


class _Buffer:
    """Shared buffer bookkeeping: bounded between drains."""

    def __init__(self, limits: Limits, initial: bytes = b"") -> None:
        self._limits = limits
        self._buf = bytearray(initial)
        self.skipped_bytes = 0
        self.discarded_frames = 0
        # Skipped bytes that were neither whitespace nor XML declarations/auth documents: junk the
        # peer sent between frames. The connection reports growth of this as a rejection.
        self.garbage_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes currently held."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        """Append received bytes. Feeding more than ``max_buffer_bytes`` without draining is fatal."""
        self._buf += data
        if len(self._buf) > self._limits.max_buffer_bytes:
            got = len(self._buf)
            self._buf.clear()
            raise LimitExceeded("buffer", limit=self._limits.max_buffer_bytes, got=got, fatal=True)

    def take_remaining(self) -> bytes:
        """Hand over everything still buffered (used when the stream switches framing)."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest


class XmlStreamFramer(_Buffer):
    """Splits a CoT XML stream into ``<event ...>...</event>`` frames.

    Whatever lies between events (XML declarations, whitespace, ``<auth>...</auth>`` documents,
    garbage) is skipped and counted in ``skipped_bytes``.
    """

    def __init__(self, limits: Limits, initial: bytes = b"") -> None:
        super().__init__(limits, initial)
        self._scan = 0  # where to resume looking for "</event>" in the current frame
        self._discarding = False  # inside an oversized event, dropping up to its "</event>"

    def next_frame(self) -> bytes | None:
        """The next complete event's bytes, or ``None`` when more data is needed."""
        buf = self._buf
        limit = self._limits.max_event_bytes
        while True:
            if self._discarding and not self._skip_oversized():
                return None
            if self._scan == 0:
                # A stream of events puts the next one right at the start of the buffer: then there
                # is nothing to skip and no search for it (bytes compared, never decoded).
                if not (buf[:_START_LEN] == _START and len(buf) > _START_LEN and buf[_START_LEN] in _AFTER_START):
                    start = self._find_start()
                    if start < 0:
                        return None
                self._scan = _START_LEN
            end = buf.find(_END, self._scan)
            if end < 0:
                if len(buf) > limit:
                    got = len(buf)
                    self._begin_discard()
                    raise LimitExceeded("event", limit=limit, got=got)
                self._scan = max(len(_START), len(buf) - len(_END) + 1)
                return None
            size = end + len(_END)
            self._scan = 0
            if size > limit:
                # Same resync rule as while discarding: a later start tag ends the oversized event.
                restart = self._next_start_tag(len(_START), end)
                self._drop(restart if restart >= 0 else size)
                self.discarded_frames += 1
                raise LimitExceeded("event", limit=limit, got=size)
            frame = bytes(buf[:size])
            del buf[:size]
            return frame

    def _skip_oversized(self) -> bool:
        """Drop the rest of an oversized event; True once past it.

        It ends at its "</event>", or at the next "<event" start tag if that comes first (an
        unterminated or self-closing giant must not swallow the following good event).
        """
        buf = self._buf
        end = buf.find(_END)
        start = self._next_start_tag(0, end if end >= 0 else len(buf))
        if start >= 0:
            self._drop(start)
        elif end >= 0:
            self._drop(end + len(_END))
        else:
            self._drop(len(buf) - _TAIL)
            return False
        self._discarding = False
        return True

    def _next_start_tag(self, pos: int, stop: int) -> int:
        """Index of the first complete "<event" start tag in ``buf[pos:stop]``, or -1."""
        buf = self._buf
        while True:
            start = buf.find(_START, pos, stop)
            after = start + len(_START)
            if start < 0 or after >= len(buf):
                return -1
            if buf[after] in _AFTER_START:
                return start
            pos = after

    def _find_start(self) -> int:
        """Move the buffer to the next "<event" start tag; -1 (keeping a possible partial tag) if none."""
        buf = self._buf
        start = self._next_start_tag(0, len(buf))
        if start >= 0:
            self._drop_between(start)
            return 0
        # Keep a tail that may be the beginning of a start tag split across reads, or an XML
        # declaration still waiting for its "?>".
        partial = buf.rfind(b"<", max(0, len(buf) - len(_START)))
        decl = buf.rfind(b"<?")
        # Never wait on more than one event's worth either: the buffer bound holds between drains.
        wait = min(_MAX_DECLARATION, self._limits.max_event_bytes)
        if decl >= 0 and len(buf) - decl < wait and buf.find(b"?>", decl) < 0:
            partial = decl if partial < 0 else min(partial, decl)
        self._drop_between(partial if partial >= 0 else len(buf))
        return -1

    def _drop_between(self, count: int) -> None:
        if count <= 0:
            return
        chunk = bytes(self._buf[:count])
        if chunk.strip():
            self.garbage_bytes += len(_BETWEEN_EVENTS.sub(b"", chunk))
        self._drop(count)

    def _begin_discard(self) -> None:
        self.discarded_frames += 1
        self._discarding = True
        self._scan = 0
        # Drop the oversized start tag itself so the resync search cannot find it again.
        self._drop(len(_START))
        self._skip_oversized()

    def _drop(self, count: int) -> None:
        if count > 0:
            self.skipped_bytes += count
            del self._buf[:count]


class ProtoStreamFramer(_Buffer):
    """Splits a TAK protocol 1 stream (``0xBF`` + varint length + ``TakMessage``) into payloads.

    Bytes before a magic ``0xBF`` are skipped and counted. A varint longer than 10 bytes is
    reported (``bad_varint``) and the stream rescanned from the next byte. A length above
    ``max_event_bytes`` is reported (``LimitExceeded``): the frame is skipped by its length when
    that is at most ``max_skip_bytes``, otherwise the header is treated as garbage and rescanned.
    Empty frames are skipped.
    """

    def __init__(self, limits: Limits, initial: bytes = b"") -> None:
        super().__init__(limits, initial)
        self._skip = 0  # bytes of an oversized frame still to drop

    def next_frame(self) -> bytes | None:
        """The next payload, or ``None`` when more data is needed."""
        buf = self._buf
        limits = self._limits
        while True:
            if self._skip:
                n = min(self._skip, len(buf))
                self._drop(n)
                self._skip -= n
                if self._skip:
                    return None
            if not buf:
                return None
            if buf[0] != _MAGIC:
                magic = buf.find(b"\xbf")
                skipped = magic if magic >= 0 else len(buf)
                self.garbage_bytes += skipped
                self._drop(skipped)
                if magic < 0:
                    return None
            length = 0
            pos = 1
            while True:
                if pos >= len(buf):
                    return None
                byte = buf[pos]
                length |= (byte & 0x7F) << (7 * (pos - 1))
                pos += 1
                if not byte & 0x80:
                    break
                if pos - 1 >= _MAX_VARINT:
                    self._drop(1)
                    raise RemoteProtocolError("bad_varint", f"length prefix longer than {_MAX_VARINT} bytes")
            if length > limits.max_event_bytes:
                self.discarded_frames += 1
                if length <= limits.max_skip_bytes:
                    self._drop(pos)
                    self._skip = length
                else:
                    self._drop(1)
                raise LimitExceeded("event", limit=limits.max_event_bytes, got=length)
            if len(buf) < pos + length:
                return None
            if length == 0:
                self._drop(pos)
                continue
            frame = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            return frame

    def _drop(self, count: int) -> None:
        if count > 0:
            self.skipped_bytes += count
            del self._buf[:count]
