"""An event in flight: the validated event, who sent it, and its encodings (made at most once each)."""

from __future__ import annotations

import msgspec

from rallypoint.model.cot import CotEvent
from rallypoint.model.cot_type import Priority, priority_of
from rallypoint.protocol.wire import WireFormat, encode_for_wire
from rallypoint.protocol.xml_codec import encode_event

ANON_GROUP = "__ANON__"
# Read once: an enum member lookup costs about 0.1 us on Python 3.11, and ``wire`` runs per delivery.
_XML = WireFormat.XML
SERVER_ORIGIN_ID = "server"


class Origin(msgspec.Struct, frozen=True, gc=False):
    """Where an event entered: a session, a datagram source, a connector or the server itself.

    ``groups`` are the sender's write (IN) groups: the event may reach readers of any of them.
    ``read_groups`` are its read (OUT) groups when it is a session that receives too (None:
    unknown, taken as ``groups``): other nodes learn from them whom the sender may be sent.
    """

    session_id: str
    groups: frozenset[str] = frozenset({ANON_GROUP})
    principal: str | None = None
    node: str = ""
    read_groups: frozenset[str] | None = None


class Envelope:
    """A routed event plus a per-wire-format encoding cache.

    The cache is why this is not a frozen struct: however many receivers an event has, each wire
    format is encoded once and the same bytes object is written to every socket.
    """

    __slots__ = ("_proto", "event", "origin", "priority", "received_ms", "repeat", "xml_bytes")

    def __init__(
        self,
        event: CotEvent,
        origin: Origin,
        received_ms: int,
        *,
        priority: Priority | None = None,
        repeat: bool = False,
    ) -> None:
        self.event = event
        self.origin = origin
        self.received_ms = received_ms
        self.priority = priority_of(event.type) if priority is None else priority
        # A repeat (emergency re-broadcast, replay) is delivered but not stored again.
        self.repeat = repeat
        # The XML encoding once made (read-only outside): a delivery to an XML stream reads it here
        # without a call when an earlier receiver already had it made (see ``wire``).
        self.xml_bytes: bytes | None = None
        self._proto: bytes | None = None

    def wire(self, fmt: WireFormat) -> bytes:
        """The bytes to write on a stream speaking ``fmt``; encoded on first use only."""
        if fmt is _XML:
            xml = self.xml_bytes
            if xml is None:
                # encode_for_wire's XML is encode_event's (once per event a client sends: one call less).
                xml = self.xml_bytes = encode_event(self.event)
            return xml
        if self._proto is None:
            self._proto = encode_for_wire(self.event, WireFormat.PROTOBUF)
        return self._proto

    def __repr__(self) -> str:
        return f"Envelope({self.event.type} {self.event.uid!r} from {self.origin.session_id})"
