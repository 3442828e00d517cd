"""Sans-IO TAK protocol: framing, XML and protobuf codecs, negotiation, the stream connection.

Nothing here does I/O, starts tasks or reads the clock: bytes and ``now_ms`` go in, events and
bytes come out.
"""

from rallypoint.protocol.connection import (
    NEED_DATA,
    ConnectionClosed,
    ConnectionEvent,
    CotConnection,
    EventReceived,
    EventRejected,
    NeedData,
    PingReceived,
    UpgradeRequested,
)
from rallypoint.protocol.framing import ProtoStreamFramer, XmlStreamFramer
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.proto_codec import TakControlInfo, TakPayload, decode_payload, encode_payload
from rallypoint.protocol.wire import WireFormat, decode_datagram, encode_for_wire, encode_mesh
from rallypoint.protocol.xml_codec import XmlDecoder, encode_event, make_event, parse_event

__all__ = [
    "NEED_DATA",
    "ConnectionClosed",
    "ConnectionEvent",
    "CotConnection",
    "EventReceived",
    "EventRejected",
    "Limits",
    "NeedData",
    "PingReceived",
    "ProtoStreamFramer",
    "TakControlInfo",
    "TakPayload",
    "UpgradeRequested",
    "WireFormat",
    "XmlDecoder",
    "XmlStreamFramer",
    "decode_datagram",
    "decode_payload",
    "encode_event",
    "encode_for_wire",
    "encode_mesh",
    "encode_payload",
    "make_event",
    "parse_event",
]
