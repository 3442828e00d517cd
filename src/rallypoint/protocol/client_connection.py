"""The client side of a TAK stream, sans-IO: XML until the server's protocol offer is taken up.

Typical use by a client::

    conn.receive_data(chunk)
    while (ev := conn.next_event()) is not NEED_DATA:
        ...                                  # EventReceived / EventRejected / ConnectionClosed
    write(conn.data_to_send())               # the upgrade request, once the offer was read

With ``protobuf``, the client answers the server's ``t-x-takp-v`` with a ``t-x-takp-q`` reusing
its uid (optionally asking for ``deflate`` compression), sends nothing more until the
``t-x-takp-r`` arrives (``send`` raises meanwhile, as the protocol requires), and then switches to
0xBF framing, inside one deflate stream per direction when the response confirms compression.
Control messages (negotiation, pings, pongs) are consumed here and never reported.
"""

from __future__ import annotations

import enum

from rallypoint.errors import LimitExceeded, LocalProtocolError, RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol import control
from rallypoint.protocol.compression import StreamCompressor, StreamDecompressor
from rallypoint.protocol.connection import (
    NEED_DATA,
    ConnectionClosed,
    EventReceived,
    EventRejected,
    NeedData,
    new_inflater,
    pull_inflated,
)
from rallypoint.protocol.framing import ProtoStreamFramer, XmlStreamFramer
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.proto_codec import decode_payload
from rallypoint.protocol.wire import WireFormat, encode_for_wire
from rallypoint.protocol.xml_codec import XmlDecoder, parse_event

ClientEvent = EventReceived | EventRejected | ConnectionClosed


class Negotiation(enum.Enum):
    """Where the client stands in the upgrade."""

    NONE = "none"  # staying on XML (not wanted, not offered, or refused)
    WAITING = "waiting"  # protobuf wanted, no offer seen yet
    REQUESTED = "requested"  # request sent, waiting for the response: nothing may be sent
    UPGRADED = "upgraded"


class ClientConnection:
    """One client stream to a TAK server, without any I/O."""

    def __init__(self, limits: Limits, *, protobuf: bool = False, compression: str | None = None) -> None:
        if compression is not None and compression != control.DEFLATE:
            raise ValueError(f"unknown compression method {compression!r}")
        self._limits = limits
        self._compression = compression
        self._requested: str | None = None
        self.negotiation = Negotiation.WAITING if protobuf or compression else Negotiation.NONE
        self.announced = False
        self._wire = WireFormat.XML
        self._xml: XmlStreamFramer | None = XmlStreamFramer(limits)
        self._proto: ProtoStreamFramer | None = None
        self._decoder = XmlDecoder(limits)
        self._inflate: StreamDecompressor | None = None
        self._deflate: StreamCompressor | None = None
        self._outgoing = bytearray()
        self._eof = False

    @property
    def wire(self) -> WireFormat:
        """The format both directions currently use."""
        return self._wire

    @property
    def compressed(self) -> bool:
        """Whether both directions are deflate streams."""
        return self._deflate is not None

    @property
    def settled(self) -> bool:
        """The format will not change any more (upgraded, or staying on XML)."""
        return self.negotiation in (Negotiation.NONE, Negotiation.UPGRADED)

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the server; ``b""`` means end of stream."""
        if not data:
            self._eof = True
            return
        if self._inflate is None:
            self._framer().feed(data)
            return
        try:
            self._inflate.feed(data)
        except ValueError as exc:
            raise LimitExceeded("buffer", limit=self._limits.max_buffer_bytes, got=len(data), fatal=True) from exc

    def next_event(self) -> ClientEvent | NeedData:
        """The next event from the server, or ``NEED_DATA``; fatal stream errors are raised."""
        while True:
            framer = self._framer()
            try:
                frame = framer.next_frame()
            except RemoteProtocolError as exc:
                if exc.fatal:
                    raise
                return EventRejected(exc.reason, exc.detail)
            if frame is None:
                if self._inflate is not None and self._inflate.pending:
                    framer.feed(pull_inflated(self._inflate))
                    continue
                return ConnectionClosed() if self._eof else NEED_DATA
            try:
                event = self._decode(frame)
            except RemoteProtocolError as exc:
                if exc.fatal:
                    raise
                return EventRejected(exc.reason, exc.detail)
            if event is None:
                continue
            if event.type.startswith(control.TAKP_PREFIX):
                self._on_control(event)
                continue
            if event.type in (control.PING, control.PONG):
                continue
            return EventReceived(event)

    def data_to_send(self) -> bytes:
        """Bytes the connection produced itself (the upgrade request), to write now."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def send(self, event: CotEvent | bytes) -> bytes:
        """The bytes to write for ``event`` (a ``CotEvent`` or one raw XML event) in the current format."""
        if self.negotiation is Negotiation.REQUESTED:
            raise LocalProtocolError("nothing may be sent while the upgrade request waits for its response")
        if isinstance(event, bytes):
            if self._wire is WireFormat.XML:
                return event
            event = parse_event(event, self._limits)
        return self._encode(event)

    def _encode(self, event: CotEvent) -> bytes:
        data = encode_for_wire(event, self._wire)
        return self._deflate.compress(data) if self._deflate is not None else data

    def _decode(self, frame: bytes) -> CotEvent | None:
        if self._wire is WireFormat.XML:
            return self._decoder.decode(frame)
        return decode_payload(frame, self._limits).event

    def _on_control(self, event: CotEvent) -> None:
        if event.type == control.PROTOCOL_SUPPORT:
            self.announced = True
            if self.negotiation is not Negotiation.WAITING:
                return
            if control.SUPPORTED_VERSION not in control.offered_versions(event, self._limits):
                self.negotiation = Negotiation.NONE
                return
            offered = control.offered_compression(event, self._limits)
            method = self._compression if self._compression in offered else None
            self._requested = method
            request = control.request(event.uid, event.time, compression=method)
            self._outgoing += encode_for_wire(request, WireFormat.XML)
            self.negotiation = Negotiation.REQUESTED
        elif event.type == control.PROTOCOL_RESPONSE and self.negotiation is Negotiation.REQUESTED:
            accepted, method = control.response_status(event, self._limits)
            if not accepted:
                self.negotiation = Negotiation.NONE
                return
            if method is not None and method != self._requested:
                # The server would compress and we would not inflate: nothing after this could be read.
                raise RemoteProtocolError("takp_bad_response", f"compression {method!r} was not requested", fatal=True)
            self._switch(method)

    def _switch(self, method: str | None) -> None:
        # Whatever followed the response in the buffer is already in the new format.
        assert self._xml is not None
        rest = self._xml.take_remaining()
        self._xml = None
        self._wire = WireFormat.PROTOBUF
        self.negotiation = Negotiation.UPGRADED
        if method is None:
            self._proto = ProtoStreamFramer(self._limits, rest)
            return
        self._proto = ProtoStreamFramer(self._limits)
        self._deflate = StreamCompressor()
        self._inflate = new_inflater(self._limits)
        if rest:
            self._inflate.feed(rest)

    def _framer(self) -> XmlStreamFramer | ProtoStreamFramer:
        framer = self._xml if self._xml is not None else self._proto
        assert framer is not None
        return framer
