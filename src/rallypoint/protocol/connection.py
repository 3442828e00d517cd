"""The sans-IO TAK stream connection (h11-style): bytes in, events out, bytes to send.

Typical use by a transport::

    conn.receive_data(chunk)            # b"" at EOF
    while (ev := conn.next_event()) is not NEED_DATA:
        match ev:
            case EventReceived(event): ...
            case PingReceived(): write(conn.pong(now_ms))
            case UpgradeRequested(): write(conn.respond_upgrade(True, now_ms))
            case EventRejected(reason, detail): count it
            case ConnectionClosed(): break

Negotiation (TAK protocol 1 over streams): the server may ``announce``; a client answers with
``t-x-takp-q``, then waits. ``next_event`` reports ``UpgradeRequested`` and pauses (returns
``NEED_DATA``) until ``respond_upgrade`` is called, because the bytes that follow the request may
already be protobuf. ``respond_upgrade(True)`` returns the XML ``t-x-takp-r`` and switches both
directions to 0xBF framing at once, re-reading anything buffered after the request.

Compression (opt-in extension, docs/protocol.md): when the server offers it and the request asks
for ``deflate``, the accepted response confirms it and, after it, each direction is one raw
deflate stream carrying the 0xBF frames. Inflation is bounded (:class:`StreamDecompressor`): a
bomb or a corrupt stream is a fatal ``RemoteProtocolError``. Output is compressed here too, so a
transport must write the bytes this connection returns in the order it returned them, and pass
already-encoded frames (shared by every receiver) through :meth:`CotConnection.send_data`.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec

from rallypoint.errors import LimitExceeded, LocalProtocolError, RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol import control
from rallypoint.protocol.compression import CompressionBomb, StreamCompressor, StreamDecompressor, deflate_bound
from rallypoint.protocol.framing import ProtoStreamFramer, XmlStreamFramer
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.proto_codec import decode_payload
from rallypoint.protocol.wire import WireFormat, encode_for_wire
from rallypoint.protocol.xml_codec import XmlDecoder


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel (an enum member, so ``is`` checks narrow types)."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA

_CONTROL_PREFIX: Final = "t-x-"
# Inflated bytes handed to the framer at a time: memory stays bounded whatever the ratio.
INFLATE_CHUNK: Final = 64 * 1024
# Read once: an enum member lookup costs about 0.1 us on Python 3.11 (here once per event).
_XML: Final = WireFormat.XML


class EventReceived(msgspec.Struct, frozen=True):
    """A valid event to hand to ingest; ``unknown_fields``: protobuf fields were dropped (count them)."""

    event: CotEvent
    unknown_fields: bool = False


class PingReceived(msgspec.Struct, frozen=True):
    """A client ping (``t-x-c-t``); answer with :meth:`CotConnection.pong`."""

    event: CotEvent


class UpgradeRequested(msgspec.Struct, frozen=True):
    """The client asked for TAK protocol ``version``; answer with :meth:`CotConnection.respond_upgrade`.

    ``compression``: the method an accepted upgrade will switch to (asked for and offered), or None.
    """

    version: int
    compression: str | None = None


class EventRejected(msgspec.Struct, frozen=True):
    """A bad frame or event was skipped; the session goes on. ``reason`` is a stable label."""

    reason: str
    detail: str


class ConnectionClosed(msgspec.Struct, frozen=True):
    """The peer closed its side (``receive_data(b"")``) and everything before it was delivered."""


ConnectionEvent = EventReceived | PingReceived | UpgradeRequested | EventRejected | ConnectionClosed


class CotConnection:
    """One TAK client stream, without any I/O."""

    def __init__(self, limits: Limits, *, offer_protobuf: bool = True, offer_compression: bool = False) -> None:
        self._limits = limits
        self._offer_protobuf = offer_protobuf
        self._offer_compression = offer_protobuf and offer_compression
        self._inflate: StreamDecompressor | None = None
        self._deflate: StreamCompressor | None = None
        self._compression: str | None = None
        # The format both directions currently use. A plain attribute, not a property: every
        # delivery to this connection reads it (``Envelope.wire(conn.wire)``). Read-only outside.
        self.wire = WireFormat.XML
        self._xml: XmlStreamFramer | None = XmlStreamFramer(limits)
        self._decoder = XmlDecoder(limits)
        self._proto: ProtoStreamFramer | None = None
        self._eof = False
        self._pending_request: CotEvent | None = None
        # A frame read together with preceding garbage, returned after the garbage is reported.
        self._held: bytes | None = None
        # Garbage bytes since the last valid event: more than one maximum-size event of it is not a
        # client that lost sync but a flood or another protocol, and ends the stream.
        self._junk = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet framed (an event still arriving, or junk being skipped)."""
        inflate = self._inflate
        return self._framer().buffered + (inflate.pending_bytes if inflate is not None else 0)

    @property
    def compressed(self) -> bool:
        """Whether both directions are deflate streams (negotiated)."""
        return self._deflate is not None

    def max_send_size(self, size: int) -> int:
        """The most bytes :meth:`send_data` can return for ``size`` bytes of frames (link budgets)."""
        return deflate_bound(size) if self._deflate is not None else size

    def send_data(self, frames: bytes) -> bytes:
        """The bytes to write for already-encoded frames (``Envelope.wire(conn.wire)``).

        Compressed streams are stateful: call this in write order, once per write (a batch of
        frames compresses better than the same frames one by one).
        """
        deflate = self._deflate
        if deflate is None or not frames:
            return frames
        return deflate.compress(frames)

    def statistics(self) -> dict[str, int]:
        """Compression counters: frame bytes in and wire bytes out, per direction (0 when off)."""
        deflate, inflate = self._deflate, self._inflate
        return {
            "sent_frame_bytes": deflate.bytes_in if deflate else 0,
            "sent_wire_bytes": deflate.bytes_out if deflate else 0,
            "received_wire_bytes": inflate.bytes_in if inflate else 0,
            "received_frame_bytes": inflate.bytes_out if inflate else 0,
        }

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer; ``b""`` means end of stream.

        Raises ``LimitExceeded`` (fatal) when more than ``max_buffer_bytes`` pile up undrained.
        """
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data after EOF")
            return
        if not data:
            self._eof = True
            return
        if self._inflate is None:
            self._framer().feed(data)
            return
        try:
            self._inflate.feed(data)
        except ValueError as exc:
            raise LimitExceeded(
                "buffer", limit=self._limits.max_buffer_bytes, got=len(data), fatal=True
            ) from exc

    def next_event(self) -> ConnectionEvent | NeedData:
        """The next thing that happened on the stream, or ``NEED_DATA``.

        Per-frame problems come back as ``EventRejected``; only a fatal ``RemoteProtocolError``
        (the stream cannot continue) is raised.
        """
        while True:
            if self._pending_request is not None:
                # Paused until respond_upgrade; a closed stream has nothing left to wait for.
                return ConnectionClosed() if self._eof else NEED_DATA
            framer = self._framer()
            frame: bytes | None
            try:
                if self._held is not None:
                    frame, self._held = self._held, None
                else:
                    frame = framer.next_frame()
            except RemoteProtocolError as exc:
                if exc.fatal:
                    raise
                return EventRejected(exc.reason, exc.detail)
            if framer.garbage_bytes:
                # Report junk between frames once, then let the frame that follows it through.
                garbage, framer.garbage_bytes = framer.garbage_bytes, 0
                self._junk += garbage
                if self._junk > self._limits.max_event_bytes:
                    raise RemoteProtocolError(
                        "garbage_flood", f"{self._junk} bytes of garbage without a valid event", fatal=True
                    )
                if frame is not None:
                    self._held = frame
                return EventRejected("garbage", f"{garbage} bytes skipped between events")
            if frame is None:
                if self._inflate is not None and self._inflate_more():
                    continue
                return ConnectionClosed() if self._eof else NEED_DATA
            try:
                if self.wire is _XML:
                    event = self._decoder.decode(frame)
                else:
                    payload = decode_payload(frame, self._limits)
                    if payload.event is None:
                        continue  # TakControl alone: nothing to act on in a stream
                    event = payload.event
                    if payload.unknown_fields and not event.type.startswith(_CONTROL_PREFIX):
                        self._junk = 0
                        return EventReceived(event, unknown_fields=True)
            except RemoteProtocolError as exc:
                if exc.fatal:
                    raise
                return EventRejected(exc.reason, exc.detail)
            self._junk = 0
            return self._classify(event)

    def announce(self, now_ms: int, server_uid: str) -> bytes:
        """The ``t-x-takp-v`` offer (XML), or ``b""`` when protobuf is not offered."""
        if not self._offer_protobuf:
            return b""
        if self.wire is not WireFormat.XML:
            raise LocalProtocolError("announce after the upgrade")
        offer = control.announcement(now_ms, server_uid, compression=self._offer_compression)
        return encode_for_wire(offer, WireFormat.XML)

    def respond_upgrade(self, accept: bool, now_ms: int) -> bytes:
        """Answer the pending request with ``t-x-takp-r`` (XML); on accept, switch to protobuf now.

        The response itself is never compressed: everything written before it must already be on
        its way, since with compression everything after it is part of the deflate stream.
        """
        request = self._pending_request
        if request is None:
            raise LocalProtocolError("respond_upgrade without a pending UpgradeRequested")
        self._pending_request = None
        method = self._compression if accept else None
        out = encode_for_wire(control.response(request.uid, accept, now_ms, compression=method), WireFormat.XML)
        if accept:
            assert self._xml is not None
            rest = self._xml.take_remaining()
            self._xml = None
            self.wire = WireFormat.PROTOBUF
            if method is None:
                self._proto = ProtoStreamFramer(self._limits, rest)
            else:
                self._proto = ProtoStreamFramer(self._limits)
                self._deflate = StreamCompressor()
                self._inflate = new_inflater(self._limits)
                if rest:
                    self._inflate.feed(rest)
        return out

    def pong(self, now_ms: int) -> bytes:
        """The reply to a ping, in the current wire format (compressed when the stream is)."""
        return self.send_data(encode_for_wire(control.pong(now_ms), self.wire))

    def encode(self, event: CotEvent) -> bytes:
        """``event`` as bytes to write on this stream (compressed when the stream is)."""
        return self.send_data(encode_for_wire(event, self.wire))

    def _inflate_more(self) -> bool:
        """Move the next inflated chunk into the framer; False when nothing more is available."""
        inflate = self._inflate
        assert inflate is not None
        if not inflate.pending:
            return False
        self._framer().feed(pull_inflated(inflate))
        return True

    def _framer(self) -> XmlStreamFramer | ProtoStreamFramer:
        framer = self._xml if self._xml is not None else self._proto
        assert framer is not None
        return framer

    def _classify(self, event: CotEvent) -> ConnectionEvent:
        cot_type = event.type
        # Pings and negotiation both start with "t-x-": one test lets ordinary events through.
        if not cot_type.startswith(_CONTROL_PREFIX):
            return EventReceived(event)
        if cot_type == control.PING:
            return PingReceived(event)
        if not cot_type.startswith(control.TAKP_PREFIX):
            return EventReceived(event)
        if cot_type != control.PROTOCOL_REQUEST:
            return EventRejected("takp_unexpected", cot_type)
        if self.wire is not WireFormat.XML:
            return EventRejected("takp_unexpected", "request after the upgrade")
        if not self._offer_protobuf:
            return EventRejected("takp_unsupported", "protobuf is not offered")
        version = control.requested_version(event, self._limits)
        if version != control.SUPPORTED_VERSION:
            return EventRejected("takp_unsupported", f"version {version}")
        self._pending_request = event
        # An unknown method is ignored, as a standard server ignores the whole element.
        method = control.requested_compression(event, self._limits)
        self._compression = method if self._offer_compression and method == control.DEFLATE else None
        return UpgradeRequested(version, self._compression)


def new_inflater(limits: Limits) -> StreamDecompressor:
    """The bounded inflater of one compressed stream direction."""
    return StreamDecompressor(slack=limits.max_buffer_bytes, max_pending=limits.max_buffer_bytes)


def pull_inflated(inflate: StreamDecompressor) -> bytes:
    """The next inflated chunk; a bomb or a corrupt stream is a fatal ``RemoteProtocolError``."""
    try:
        return inflate.pull(INFLATE_CHUNK)
    except CompressionBomb as exc:
        raise RemoteProtocolError("compression_bomb", str(exc), fatal=True) from None
    except ValueError as exc:
        raise RemoteProtocolError("compression_corrupt", str(exc), fatal=True) from None
