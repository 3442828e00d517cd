"""What crosses NATS: a published envelope and its audience as one msgpack message.

Only the NATS bus pays for this; the local bus hands the objects over as they are. Every field
of ``Envelope`` that matters to another node is carried (the per-wire-format encoding cache is
not: each node encodes for its own sessions). ``CotEvent``, ``Origin`` and ``Audience`` are
msgspec structs, so whatever fields they grow are encoded without this module changing.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

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
        return Envelope(
            self.event, self.origin, self.received_ms, priority=self.priority, repeat=self.repeat
        )


class LatestEntry(msgspec.Struct, frozen=True, gc=False):
    """A value of the shared latest-state cache: the newest event of a uid and where it entered."""

    event: CotEvent
    origin: Origin
    received_ms: int


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
        self._decoder = msgspec.msgpack.Decoder(BusMessage)
        self._latest_decoder = msgspec.msgpack.Decoder(LatestEntry)
        self.encoded = 0
        self.decoded = 0
        self.oversize = 0
        self.malformed = 0

    def encode(self, message_id: str, envelope: Envelope, audience: Audience) -> bytes:
        """The bytes of one publication; ``LimitExceeded`` when over ``max_bytes``."""
        message = BusMessage(
            id=message_id, event=envelope.event, origin=envelope.origin, received_ms=envelope.received_ms,
            priority=envelope.priority, repeat=envelope.repeat, audience=audience,
        )
        data = self._checked(self._encoder.encode(message))
        self.encoded += 1
        return data

    def decode(self, data: bytes) -> BusMessage:
        """A publication of another node; ``LimitExceeded`` or ``RemoteProtocolError`` when refused."""
        message = self._decode(self._decoder, data)
        self.decoded += 1
        return message

    def encode_latest(self, envelope: Envelope) -> bytes:
        """A latest-state cache value for ``envelope``'s event."""
        entry = LatestEntry(event=envelope.event, origin=envelope.origin, received_ms=envelope.received_ms)
        return self._checked(self._encoder.encode(entry))

    def decode_latest(self, data: bytes) -> Envelope:
        """The envelope a latest-state cache value was made from."""
        entry = self._decode(self._latest_decoder, data)
        return Envelope(entry.event, entry.origin, entry.received_ms)

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
