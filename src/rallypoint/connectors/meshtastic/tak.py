"""The Meshtastic ATAK plugin's packets, sans-IO: ``TAKPacket`` (port 72) and ``TAKPacketV2`` (port 78).

Both are read into one frozen ``TakMessage`` (a position report or a chat, which ``mesh_cot.py``
turns into CoT, or a version 1 packet's generic CoT XML, which ``raw_detail.py`` reads).
``TAKPacket`` strings are unishox2-compressed when ``is_compressed`` is set: such strings are not
UTF-8, which the generated ``TAKPacket`` class refuses, so version 1 packets are read with a copy of
its schema whose string fields are bytes.
A ``TAKPacketV2`` payload is one flags byte and the protobuf: ``0xFF`` then the bare protobuf, else
bits 0-5 name the zstd dictionary the frame was compressed with (``dictionaries.py``: 0 non-aircraft,
1 aircraft, as shipped; more or others configured by id). A frame naming a dictionary we do not
have is refused as ``v2_dictionary``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import unishox2
import zstandard
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from meshtastic.protobuf import atak_pb2

from rallypoint.connectors.meshtastic.dictionaries import UNCOMPRESSED, dict_id_for
from rallypoint.errors import RemoteProtocolError

MAX_STRING = 256  # longest decompressed string taken from a packet (callsigns, a chat line)
MAX_V2_BYTES = 4096  # a decompressed TAKPacketV2 larger than this is refused (zstd bomb)

# Team colours and roles: the plugin's enum names and the names ATAK writes in <__group>.
TEAMS: tuple[str, ...] = (
    "", "White", "Yellow", "Orange", "Magenta", "Red", "Maroon", "Purple", "Dark Blue", "Blue", "Cyan",
    "Teal", "Green", "Dark Green", "Brown",
)
ROLES: tuple[str, ...] = (
    "", "Team Member", "Team Lead", "HQ", "Sniper", "Medic", "Forward Observer", "RTO", "K9",
)


class Kind(enum.Enum):
    """What a plugin packet says."""

    PLI = "pli"
    CHAT = "chat"
    DETAIL = "detail"  # a TAKPacket's generic CoT XML (``raw_detail.py`` reads it)


@dataclass(frozen=True, slots=True)
class TakMessage:
    """One plugin packet, decoded: who (``uid``, ``callsign``, team, role) and what (position or chat).

    ``uid`` is the ATAK device uid the plugin sends (``device_callsign`` in ``TAKPacket``), empty
    when the packet has none. Positions are degrees, metres, m/s and degrees true.
    """

    kind: Kind
    uid: str
    callsign: str
    team: str = ""
    role: str = ""
    battery: int | None = None
    lat: float = 0.0
    lon: float = 0.0
    alt: float | None = None
    speed: float | None = None
    course: float | None = None
    cot_type: str = "a-f-G-U-C"
    message: str = ""
    to: str = ""  # chat recipient uid or room ("All Chat Rooms" when empty)
    to_callsign: str = ""
    receipt_for: str = ""  # a delivery/read receipt for this message uid
    receipt_type: int = 0
    detail: bytes = b""  # Kind.DETAIL: the packet's CoT XML, decompressed


def _bytes_schema() -> type[Message]:
    """``TAKPacket`` with every string field read as bytes (compressed strings are not UTF-8)."""
    file_proto = descriptor_pb2.FileDescriptorProto()
    atak_pb2.DESCRIPTOR.CopyToProto(file_proto)
    file_proto.name = "rallypoint_mesh_atak_bytes.proto"
    del file_proto.dependency[:]  # only nanopb size options, which parsing here does not need
    file_proto.ClearField("options")
    for message in file_proto.message_type:
        message.ClearField("options")
        for field in message.field:
            field.ClearField("options")
            if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    pool = descriptor_pool.DescriptorPool()  # its own pool: the same names as the generated classes
    pool.Add(file_proto)
    cls: type[Message] = message_factory.GetMessageClass(pool.FindMessageTypeByName("meshtastic.protobuf.TAKPacket"))
    return cls


class TakCodec:
    """Reads and writes plugin packets; holds the V1 bytes schema and the V2 zstd dictionaries."""

    def __init__(self, dictionaries: Mapping[int, bytes] | None = None) -> None:
        self._v1 = _bytes_schema()
        dicts = {i: zstandard.ZstdCompressionDict(d) for i, d in (dictionaries or {}).items()}
        # One compressor and decompressor per dictionary, reused: loading a dictionary costs about 20
        # times compressing a packet with it. The flags byte names the dictionary, so the frame need not
        # repeat its id (4 bytes of airtime).
        self._writers = {i: zstandard.ZstdCompressor(level=19, dict_data=d, write_dict_id=False)
                         for i, d in dicts.items()}
        self._readers = {i: zstandard.ZstdDecompressor(dict_data=d) for i, d in dicts.items()}

    # -- version 1 ---------------------------------------------------------------------------
    def decode_v1(self, payload: bytes) -> TakMessage:
        """A ``TAKPacket``; ``RemoteProtocolError`` when it is not one or says nothing we carry."""
        packet = self._v1()
        try:
            packet.ParseFromString(payload)
        except DecodeError:
            raise RemoteProtocolError("tak_malformed", "not a TAKPacket") from None
        p: atak_pb2.TAKPacket = packet  # same fields, bytes for strings
        compressed = p.is_compressed

        def text(raw: bytes | str) -> str:
            return _text(raw, compressed)

        uid = text(p.contact.device_callsign)
        callsign = text(p.contact.callsign)
        team = TEAMS[p.group.team] if 0 <= p.group.team < len(TEAMS) else ""
        role = ROLES[p.group.role] if 0 <= p.group.role < len(ROLES) else ""
        battery = p.status.battery if p.HasField("status") else None
        which = p.WhichOneof("payload_variant")
        if which == "pli":
            return TakMessage(
                kind=Kind.PLI, uid=uid, callsign=callsign, team=team, role=role, battery=battery,
                lat=p.pli.latitude_i / 1e7, lon=p.pli.longitude_i / 1e7, alt=float(p.pli.altitude),
                speed=float(p.pli.speed), course=float(p.pli.course),
            )
        if which == "chat":
            return TakMessage(
                kind=Kind.CHAT, uid=uid, callsign=callsign, team=team, role=role, battery=battery,
                message=text(p.chat.message), to=text(p.chat.to), to_callsign=text(p.chat.to_callsign),
            )
        if which == "detail":
            return TakMessage(kind=Kind.DETAIL, uid=uid, callsign=callsign, team=team, role=role, battery=battery,
                              detail=_detail(p.detail, compressed))
        raise RemoteProtocolError("tak_unsupported", f"TAKPacket {which or 'without payload'}")

    def encode_v1(self, msg: TakMessage, *, compress: bool = False) -> bytes:
        """``msg`` as a ``TAKPacket`` (strings unishox2-compressed when ``compress``)."""
        packet = self._v1()
        p: atak_pb2.TAKPacket = packet
        p.is_compressed = compress

        def raw(value: str) -> bytes:
            if not compress:
                return value.encode()
            data, _ = unishox2.compress(value)
            return bytes(data)

        p.contact.callsign = raw(msg.callsign)
        p.contact.device_callsign = raw(msg.uid)
        if msg.team in TEAMS:
            p.group.team = TEAMS.index(msg.team)
        if msg.role in ROLES:
            p.group.role = ROLES.index(msg.role)
        if msg.battery is not None:
            p.status.battery = max(0, min(100, msg.battery))
        if msg.kind is Kind.PLI:
            p.pli.latitude_i = round(msg.lat * 1e7)
            p.pli.longitude_i = round(msg.lon * 1e7)
            p.pli.altitude = round(msg.alt or 0.0)
            p.pli.speed = max(0, round(msg.speed or 0.0))
            p.pli.course = round(msg.course or 0.0) % 360
        elif msg.kind is Kind.DETAIL:
            p.detail = msg.detail  # sent as is: the firmware never compresses it
        else:
            p.chat.message = raw(msg.message)
            if msg.to:
                p.chat.to = raw(msg.to)
            if msg.to_callsign:
                p.chat.to_callsign = raw(msg.to_callsign)
        return packet.SerializeToString()

    # -- version 2 ---------------------------------------------------------------------------
    def decode_v2(self, payload: bytes) -> TakMessage:
        """A ``TAKPacketV2`` payload (flags byte + zstd frame) as a position or chat."""
        return self.message_v2(self.unpack_v2(payload))

    def unpack_v2(self, payload: bytes) -> atak_pb2.TAKPacketV2:
        """The ``TAKPacketV2`` of a payload (flags byte, then a zstd frame or, after ``0xFF``, the bare protobuf)."""
        if len(payload) < 2:
            raise RemoteProtocolError("tak_malformed", "TAKPacketV2 payload too short")
        if payload[0] == UNCOMPRESSED:
            body = payload[1:]
        else:
            dict_id = payload[0] & 0x3F  # bits 6-7 are reserved: ignored
            reader = self._readers.get(dict_id)
            if reader is None:
                raise RemoteProtocolError("v2_dictionary", f"zstd dictionary {dict_id} is not configured")
            try:
                # At most one byte past the limit is produced: a 200-byte frame can claim megabytes.
                body = reader.stream_reader(payload[1:]).read(MAX_V2_BYTES + 1)
            except zstandard.ZstdError:
                raise RemoteProtocolError("tak_malformed", "TAKPacketV2 is not a zstd frame") from None
        if len(body) > MAX_V2_BYTES:
            raise RemoteProtocolError("oversize", f"TAKPacketV2 decompresses past {MAX_V2_BYTES} bytes")
        p = atak_pb2.TAKPacketV2()
        try:
            p.ParseFromString(body)
        except DecodeError:
            raise RemoteProtocolError("tak_malformed", "not a TAKPacketV2") from None
        return p

    def pack_v2(self, p: atak_pb2.TAKPacketV2, *, dict_id: int | None = None) -> bytes:
        """``p`` as a V2 payload: compressed with dictionary ``dict_id`` (default: the one its type uses).

        The protobuf goes uncompressed after a ``0xFF`` flags byte when that dictionary is missing,
        or when that is shorter (a small packet gains less than a zstd frame's own header costs).
        """
        if dict_id is None:
            dict_id = dict_id_for(v2_type(p))
        body: bytes = p.SerializeToString()
        bare = bytes([UNCOMPRESSED]) + body
        writer = self._writers.get(dict_id)
        if writer is None:
            return bare
        packed = bytes([dict_id & 0x3F]) + writer.compress(body)
        return packed if len(packed) < len(bare) else bare

    def message_v2(self, p: atak_pb2.TAKPacketV2) -> TakMessage:
        """A V2 packet's position or chat (markers and routes are read by ``v2_items.py``)."""
        team = TEAMS[p.team] if 0 <= p.team < len(TEAMS) else ""
        role = ROLES[p.role] if 0 <= p.role < len(ROLES) else ""
        common = {
            "uid": p.uid[:MAX_STRING], "callsign": p.callsign[:MAX_STRING], "team": team, "role": role,
            "battery": p.battery or None,
        }
        which = p.WhichOneof("payload_variant")
        if which in ("marker", "route", "shape", "rab", "aircraft"):
            raise RemoteProtocolError("tak_unsupported", f"a V2 {which} is not a position or chat")
        if which == "chat":
            return TakMessage(
                kind=Kind.CHAT, message=p.chat.message[:MAX_STRING], to=p.chat.to[:MAX_STRING],
                to_callsign=p.chat.to_callsign[:MAX_STRING], receipt_for=p.chat.receipt_for_uid[:MAX_STRING],
                receipt_type=p.chat.receipt_type, **common,
            )
        if which in (None, "pli") or p.latitude_i or p.longitude_i:
            return TakMessage(
                kind=Kind.PLI, lat=p.latitude_i / 1e7, lon=p.longitude_i / 1e7, alt=float(p.altitude),
                speed=p.speed / 100.0, course=p.course / 100.0, cot_type=v2_type(p),
                **common,
            )
        raise RemoteProtocolError("tak_unsupported", f"TAKPacketV2 {which}")

    def encode_v2(self, msg: TakMessage, *, dict_id: int | None = None) -> bytes:
        """``msg`` as a ``TAKPacketV2`` payload (``pack_v2``: its type's dictionary unless ``dict_id`` says)."""
        p = atak_pb2.TAKPacketV2(uid=msg.uid, callsign=msg.callsign)
        if msg.team in TEAMS:
            p.team = TEAMS.index(msg.team)
        if msg.role in ROLES:
            p.role = ROLES.index(msg.role)
        if msg.battery is not None:
            p.battery = max(0, min(100, msg.battery))
        if msg.kind is Kind.CHAT:
            p.chat.message = msg.message
            if msg.to:
                p.chat.to = msg.to
            if msg.to_callsign:
                p.chat.to_callsign = msg.to_callsign
        else:
            p.cot_type_id = atak_pb2.CotType_Other
            p.cot_type_str = msg.cot_type
            p.latitude_i = round(msg.lat * 1e7)
            p.longitude_i = round(msg.lon * 1e7)
            p.altitude = round(msg.alt or 0.0)
            p.speed = max(0, round((msg.speed or 0.0) * 100))
            p.course = round((msg.course or 0.0) * 100) % 36000
            # A typed enum value when the type has one: two bytes instead of the string.
            enum_name = "CotType_" + msg.cot_type.replace("-", "_")
            if enum_name in set(atak_pb2.CotType.keys()):
                p.cot_type_id = atak_pb2.CotType.Value(enum_name)
                p.cot_type_str = ""
        return self.pack_v2(p, dict_id=dict_id)


def v2_type(p: atak_pb2.TAKPacketV2) -> str:
    """The CoT type a V2 packet names (its enum value, else its type string)."""
    if p.cot_type_id == atak_pb2.CotType_Other:
        return str(p.cot_type_str[:64]) or "a-f-G-U-C"
    try:
        name = str(atak_pb2.CotType.Name(p.cot_type_id))
    except ValueError:  # a value from a newer schema: its string, if the sender gave one
        if p.cot_type_str:
            return str(p.cot_type_str[:64])
        raise RemoteProtocolError("tak_unsupported", f"unknown CoT type id {p.cot_type_id}") from None
    return name.removeprefix("CotType_").replace("_", "-")


def _detail(raw: bytes, compressed: bool) -> bytes:
    """A ``TAKPacket.detail``: XML as sent, else (``is_compressed``) unishox2 like the packet's strings."""
    if raw.lstrip()[:1] == b"<" or not compressed:
        return raw
    try:
        text = str(unishox2.decompress(raw, MAX_V2_BYTES))
    except Exception:  # noqa: BLE001 - the C extension raises various errors on garbage
        raise RemoteProtocolError("tak_malformed", "a compressed detail does not decompress") from None
    return text.encode()


def _text(raw: bytes | str, compressed: bool) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    if not data:
        return ""
    if compressed:
        try:
            text = str(unishox2.decompress(data, MAX_STRING * 4))
        except Exception:  # noqa: BLE001 - the C extension raises various errors on garbage
            raise RemoteProtocolError("tak_malformed", "a compressed string does not decompress") from None
        return text[:MAX_STRING]
    try:
        return data.decode("utf-8")[:MAX_STRING]
    except UnicodeDecodeError:
        raise RemoteProtocolError("tak_malformed", "a string is not UTF-8") from None
