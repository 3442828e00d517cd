"""Whole messages as they go on a stream or in a datagram."""

from __future__ import annotations

import enum

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.proto_codec import decode_payload, encode_payload
from rallypoint.protocol.xml_codec import XmlDecoder, encode_event, parse_event

MAGIC = 0xBF
MESH_HEADER = b"\xbf\x01\xbf"


class WireFormat(enum.Enum):
    """What a stream speaks: CoT XML (TAK protocol 0) or TAK protocol 1 protobuf."""

    XML = "xml"
    PROTOBUF = "protobuf"


def encode_varint(value: int) -> bytes:
    """Protobuf base-128 unsigned varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_for_wire(event: CotEvent, wire: WireFormat) -> bytes:
    """The complete bytes to write on a stream: the ``<event>`` (no declaration, no newline),
    or ``0xBF`` + varint length + ``TakMessage``."""
    if wire is WireFormat.XML:
        return encode_event(event)
    payload = encode_payload(event)
    return b"\xbf" + encode_varint(len(payload)) + payload


def encode_mesh(event: CotEvent) -> bytes:
    """A TAK protocol 1 mesh datagram: ``bf 01 bf`` + ``TakMessage``."""
    return MESH_HEADER + encode_payload(event)


def decode_datagram(data: bytes, limits: Limits, decoder: XmlDecoder | None = None) -> CotEvent:
    """Decode one datagram: an XML event (declaration allowed) or a ``bf 01 bf`` mesh message.

    A receive loop should pass its own ``decoder`` (same ``limits``): XML then decodes more
    cheaply, with exactly the same result.
    """
    if data[:1] == b"\xbf":
        if data[:3] != MESH_HEADER:
            raise RemoteProtocolError("bad_header", data[:3].hex())
        payload = decode_payload(data[3:], limits)
        if payload.event is None:
            raise RemoteProtocolError("no_event", "TakMessage without cotEvent")
        return payload.event
    if decoder is not None:
        return decoder.decode(data)
    return parse_event(data, limits)
