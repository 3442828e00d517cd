"""What crosses NATS: a published envelope and its audience as one msgpack message.

Only the NATS bus pays for this; the local bus hands the objects over as they are. Every field
of ``Envelope`` that matters to another node is carried (the per-wire-format encoding cache is
not: each node encodes for its own sessions), in the compact form of :mod:`rallypoint.bus.wire`;
a field added to ``CotEvent``, ``Origin`` or ``Audience`` must be added there too (a unit test
compares the field lists).
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from rallypoint.bus.wire import (
    TimeTexts,
    WireLatest,
    WireMessage,
    audience_from_wire,
    audience_to_wire,
    from_wire,
    origin_from_wire,
    origin_to_wire,
    to_wire,
)
from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.model.cot_type import Priority
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience

# NATS refuses payloads over its max_payload (1 MiB unless configured otherwise).
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
T = TypeVar("T")


class BusMessage(msgspec.Struct, frozen=True, gc=False):
    """One publication on the bus. ``id`` (``<node>:<seq>``) is unique per publication and is
    what JetStream and the receiving nodes deduplicate on."""

    id: str
    event: CotEvent
    origin: Origin
    received_ms: int
    priority: Priority
    repeat: bool
    audience: Audience

    def envelope(self) -> Envelope:
        """The envelope as the publishing node handed it to its own subscribers."""
        return Envelope(self.event, self.origin, self.received_ms, priority=self.priority, repeat=self.repeat)


class CodecStatistics(msgspec.Struct, frozen=True):
    """Messages refused by reason: ``oversize`` (over ``max_bytes``), ``malformed`` (not a bus message)."""

    encoded: int
    decoded: int
    oversize: int
    malformed: int


class BusCodec:
    """Encodes and decodes bus messages; refuses (raises and counts) anything over ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(WireMessage)
        self._latest_decoder = msgspec.msgpack.Decoder(WireLatest)
        self._times = TimeTexts()
        self.encoded = 0
        self.decoded = 0
        self.oversize = 0
        self.malformed = 0

    def encode(self, message_id: str, envelope: Envelope, audience: Audience) -> bytes:
        """The bytes of one publication; ``LimitExceeded`` when over ``max_bytes``."""
        origin = envelope.origin
        node, _, seq = message_id.rpartition(":")
        # The usual id is "<origin node>:<seq>": the node is in the origin already.
        short = node == origin.node and seq.isdigit() and seq == str(int(seq))
        message = WireMessage(
            int(seq) if short else 0,
            to_wire(envelope.event, self._times),
            origin_to_wire(origin),
            envelope.received_ms,
            int(envelope.priority),
            envelope.repeat,
            audience_to_wire(audience),
            None if short else message_id,
        )
        data = self._checked(self._encoder.encode(message))
        self.encoded += 1
        return data

    def decode(self, data: bytes) -> BusMessage:
        """A publication of another node; ``LimitExceeded`` or ``RemoteProtocolError`` when refused."""
        wire = self._decode(self._decoder, data)
        try:
            origin = origin_from_wire(wire.origin)
            message = BusMessage(
                id=wire.id if wire.id is not None else f"{origin.node}:{wire.seq}",
                event=from_wire(wire.event, self._times),
                origin=origin,
                received_ms=wire.received_ms,
                priority=Priority(wire.priority),
                repeat=wire.repeat,
                audience=audience_from_wire(wire.audience),
            )
        except (ValueError, TypeError, IndexError) as exc:
            self.malformed += 1
            raise RemoteProtocolError("bus_message_malformed", str(exc)) from exc
        self.decoded += 1
        return message

    def encode_latest(self, envelope: Envelope) -> bytes:
        """A latest-state cache value for ``envelope``'s event."""
        entry = WireLatest(to_wire(envelope.event, self._times), origin_to_wire(envelope.origin), envelope.received_ms)
        return self._checked(self._encoder.encode(entry))

    def decode_latest(self, data: bytes) -> Envelope:
        """The envelope a latest-state cache value was made from."""
        entry = self._decode(self._latest_decoder, data)
        try:
            return Envelope(from_wire(entry.event, self._times), origin_from_wire(entry.origin), entry.received_ms)
        except (ValueError, TypeError, IndexError) as exc:
            self.malformed += 1
            raise RemoteProtocolError("bus_message_malformed", str(exc)) from exc

    def statistics(self) -> CodecStatistics:
        """Counters of this codec."""
        return CodecStatistics(
            encoded=self.encoded, decoded=self.decoded, oversize=self.oversize, malformed=self.malformed
        )

    def _decode(self, decoder: msgspec.msgpack.Decoder[T], data: bytes) -> T:
        self._checked(data)
        try:
            return decoder.decode(data)
        except msgspec.DecodeError as exc:
            self.malformed += 1
            raise RemoteProtocolError("bus_message_malformed", str(exc)) from exc

    def _checked(self, data: bytes) -> bytes:
        if len(data) > self.max_bytes:
            self.oversize += 1
            raise LimitExceeded("bus_message", limit=self.max_bytes, got=len(data))
        return data
