"""Meshtastic MQTT uplink/downlink (``ServiceEnvelope`` on ``msh/REGION/2/e/CHANNEL/!gateway``), sans-IO.

A gateway publishes each packet it hears as a ``ServiceEnvelope``: the ``MeshPacket`` still
encrypted with the channel key (``encrypted``), the channel name and the gateway's node id.
Reading one means decrypting ``encrypted`` (``crypto.py``) and parsing the ``Data`` inside. AES-CTR
never fails, so a wrong key shows only in what comes out: bytes that do not parse as ``Data``
or name no known port. Those are refused as ``wrong_key``.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from meshtastic.protobuf import mesh_pb2, mqtt_pb2, portnums_pb2

from rallypoint.connectors.meshtastic.crypto import crypt
from rallypoint.errors import RemoteProtocolError

MAX_ENVELOPE = 1024  # a ServiceEnvelope around one LoRa packet is a few hundred bytes
_PORTS = frozenset(portnums_pb2.PortNum.values()) - {portnums_pb2.UNKNOWN_APP}


def node_id_text(num: int) -> str:
    """A node number as Meshtastic writes it: ``!a1b2c3d4``."""
    return f"!{num & 0xFFFF_FFFF:08x}"


def decode_envelope(data: bytes, key: bytes) -> tuple[mqtt_pb2.ServiceEnvelope, mesh_pb2.MeshPacket]:
    """The envelope and its packet with ``decoded`` filled (decrypted with ``key`` when encrypted)."""
    if len(data) > MAX_ENVELOPE:
        raise RemoteProtocolError("oversize", f"MQTT message of {len(data)} bytes")
    envelope = mqtt_pb2.ServiceEnvelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError:
        raise RemoteProtocolError("malformed", "not a ServiceEnvelope") from None
    if not envelope.HasField("packet"):
        raise RemoteProtocolError("malformed", "ServiceEnvelope without a packet")
    packet = mesh_pb2.MeshPacket()
    packet.CopyFrom(envelope.packet)
    if packet.WhichOneof("payload_variant") == "encrypted":
        if not key:
            raise RemoteProtocolError("wrong_key", "encrypted packet on a channel configured without a key")
        plain = crypt(key, packet.id, getattr(packet, "from"), packet.encrypted)
        decoded = mesh_pb2.Data()
        try:
            decoded.ParseFromString(plain)
        except DecodeError:
            raise RemoteProtocolError("wrong_key", "packet does not decrypt with the channel key") from None
        if decoded.portnum not in _PORTS:
            raise RemoteProtocolError("wrong_key", "packet does not decrypt with the channel key")
        packet.decoded.CopyFrom(decoded)
    elif not packet.HasField("decoded"):
        raise RemoteProtocolError("malformed", "packet carries neither data nor ciphertext")
    return envelope, packet


def encode_envelope(
    packet: mesh_pb2.MeshPacket, *, key: bytes, channel_id: str, gateway_id: str,
) -> bytes:
    """A ``ServiceEnvelope`` for ``packet`` (its ``decoded`` encrypted with ``key`` when there is one)."""
    out = mesh_pb2.MeshPacket()
    out.CopyFrom(packet)
    if key and packet.HasField("decoded"):
        plain = packet.decoded.SerializeToString()
        out.encrypted = crypt(key, packet.id, getattr(packet, "from"), plain)
    envelope = mqtt_pb2.ServiceEnvelope(channel_id=channel_id, gateway_id=gateway_id)
    envelope.packet.CopyFrom(out)
    return bytes(envelope.SerializeToString())
