"""Mesh packets in, CoT out (sans-IO): ports, replay protection, node names, acknowledgements.

``MeshInbound.packet(packet, now_ms)`` reads one ``MeshPacket`` (already decrypted) and answers
what it means for the picture: CoT events, and the id of one of our packets the mesh
acknowledged. Hostile or useless input raises ``RemoteProtocolError`` with a short reason
(``replay``, ``oversize``, ``malformed``, ``tak_malformed``, ``port``...) that the caller counts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from meshtastic.protobuf import atak_pb2, mesh_pb2, portnums_pb2

from rallypoint.connectors.meshtastic.mesh_cot import chat_event, node_uid, position_event
from rallypoint.connectors.meshtastic.raw_detail import v1_detail_event, v2_raw_detail_event
from rallypoint.connectors.meshtastic.tak import Kind, TakCodec, TakMessage, v2_type
from rallypoint.connectors.meshtastic.v2_items import item_event
from rallypoint.connectors.meshtastic.v2_shapes import geometry_event
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent

MAX_PAYLOAD = 237  # the largest Data payload read from a mesh (earlier protobufs allowed 237)
# The largest one sent: current firmware decodes Data.payload into 233 bytes (mesh.options) and drops
# a packet whose payload is longer, however well it would fit the LoRa frame.
MAX_SEND_PAYLOAD = int(mesh_pb2.Constants.Value("DATA_PAYLOAD_LEN"))
BROADCAST = 0xFFFF_FFFF
_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True, slots=True)
class Inbound:
    """What one packet means: events for the picture and/or an acknowledged packet id of ours."""

    events: tuple[CotEvent, ...] = ()
    acked: int | None = None
    failed: int | None = None  # our packet the mesh reports as undeliverable


@dataclass
class _Names:
    long: str
    short: str


@dataclass
class MeshInbound:
    """Decodes packets of one mesh; keeps a bounded replay cache per sender and the nodes' names.

    ``ids_per_sender`` recent packet ids are remembered per sending node, for at most
    ``max_senders`` nodes (least recently heard forgotten first). Meshtastic nodes rebroadcast
    packets (and MQTT carries the same packet from several gateways), so a repeat of an id is
    normal: it is dropped and counted as ``replay``, never delivered twice.
    """

    tak: TakCodec
    ids_per_sender: int = 256
    max_senders: int = 4096
    _seen: OrderedDict[int, OrderedDict[int, None]] = field(default_factory=OrderedDict)
    _names: OrderedDict[int, _Names] = field(default_factory=OrderedDict)

    def learn_user(self, node_num: int, user: mesh_pb2.User) -> None:
        """Remember a node's names (NodeInfo): the callsign of its positions and chats."""
        self._names[node_num] = _Names(user.long_name[:64], user.short_name[:8])
        self._names.move_to_end(node_num)
        while len(self._names) > self.max_senders:
            self._names.popitem(last=False)

    def callsign(self, node_num: int) -> str:
        """A node's long name, else its short name, else ``!a1b2c3d4``."""
        names = self._names.get(node_num)
        if names is not None and (names.long or names.short):
            return names.long or names.short
        return f"!{node_num & 0xFFFF_FFFF:08x}"

    def packet(self, packet: mesh_pb2.MeshPacket, now_ms: int) -> Inbound:
        """The meaning of one decrypted packet (``RemoteProtocolError`` with the reason it is dropped)."""
        if not packet.HasField("decoded"):
            raise RemoteProtocolError("encrypted", "packet not decrypted (unknown channel key)")
        sender = getattr(packet, "from")
        data = packet.decoded
        if len(data.payload) > MAX_PAYLOAD:
            raise RemoteProtocolError("oversize", f"payload of {len(data.payload)} bytes (max {MAX_PAYLOAD})")
        self._check_replay(sender, packet.id)
        port = data.portnum
        payload = data.payload
        if port == portnums_pb2.ROUTING_APP:
            return self._routing(data)
        if port == portnums_pb2.NODEINFO_APP:
            self.learn_user(sender, _parse(mesh_pb2.User, payload))
            return Inbound()
        if port == portnums_pb2.POSITION_APP:
            pos = _parse(mesh_pb2.Position, payload)
            if not pos.HasField("latitude_i") or not pos.HasField("longitude_i"):
                return Inbound()  # a node without a fix says so with an empty position
            msg = TakMessage(
                kind=Kind.PLI, uid=node_uid(sender), callsign=self.callsign(sender),
                lat=pos.latitude_i / 1e7, lon=pos.longitude_i / 1e7,
                alt=float(pos.altitude) if pos.HasField("altitude") else None,
                speed=float(pos.ground_speed) if pos.HasField("ground_speed") else None,
                course=pos.ground_track * 1e-5 if pos.HasField("ground_track") else None,
                cot_type="a-f-G-U-C",
            )
            return Inbound(events=(self._position(msg, sender, now_ms),))
        if port == portnums_pb2.TEXT_MESSAGE_APP:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise RemoteProtocolError("malformed", "text message is not UTF-8") from None
            msg = TakMessage(kind=Kind.CHAT, uid=node_uid(sender), callsign=self.callsign(sender), message=text)
            return Inbound(events=(self._chat(msg, sender, packet.id, now_ms),))
        if port in (portnums_pb2.ATAK_PLUGIN, portnums_pb2.ATAK_PLUGIN_V2):
            if port == portnums_pb2.ATAK_PLUGIN:
                msg = self.tak.decode_v1(payload)
                if msg.kind is Kind.DETAIL:
                    return Inbound(events=(v1_detail_event(msg.detail),))
            else:
                v2 = self.tak.unpack_v2(payload)
                which = v2.WhichOneof("payload_variant")
                if which in ("marker", "route"):
                    return Inbound(events=(self._item(item_event, v2, now_ms),))
                if which in ("shape", "rab", "aircraft"):
                    return Inbound(events=(self._item(geometry_event, v2, now_ms),))
                if which == "raw_detail":
                    return Inbound(events=(self._item(v2_raw_detail_event, v2, now_ms),))
                msg = self.tak.message_v2(v2)
            if msg.kind is Kind.PLI:
                return Inbound(events=(self._position(msg, sender, now_ms),))
            if msg.receipt_for:
                return Inbound()  # a plugin's own receipt: ours come from the mesh's acknowledgements
            return Inbound(events=(self._chat(msg, sender, packet.id, now_ms),))
        raise RemoteProtocolError("port", f"port {port} does not cross into the picture")

    def _item(self, build: Callable[[atak_pb2.TAKPacketV2, str, int], CotEvent], v2: atak_pb2.TAKPacketV2,
              now_ms: int) -> CotEvent:
        if not (-90.0 <= v2.latitude_i / 1e7 <= 90.0 and -180.0 <= v2.longitude_i / 1e7 <= 180.0):
            raise RemoteProtocolError("malformed", "position out of range")
        return build(v2, v2_type(v2), now_ms)  # make_event refuses what the picture cannot carry

    def _position(self, msg: TakMessage, sender: int, now_ms: int) -> CotEvent:
        if not (-90.0 <= msg.lat <= 90.0 and -180.0 <= msg.lon <= 180.0):
            raise RemoteProtocolError("malformed", "position out of range")
        return position_event(msg, uid=msg.uid or node_uid(sender), now_ms=now_ms)

    def _chat(self, msg: TakMessage, sender: int, packet_id: int, now_ms: int) -> CotEvent:
        if not msg.message.strip():
            raise RemoteProtocolError("malformed", "empty chat")
        sender_uid = msg.uid or node_uid(sender)
        return chat_event(msg, sender_uid=sender_uid, message_id=f"mesh-{sender:08x}-{packet_id:08x}", now_ms=now_ms)

    def _routing(self, data: mesh_pb2.Data) -> Inbound:
        routing = _parse(mesh_pb2.Routing, data.payload)
        if not data.request_id:
            return Inbound()
        if routing.WhichOneof("variant") == "error_reason" and routing.error_reason != mesh_pb2.Routing.NONE:
            return Inbound(failed=data.request_id)
        return Inbound(acked=data.request_id)

    def _check_replay(self, sender: int, packet_id: int) -> None:
        if packet_id == 0:
            return  # packets made by the node itself for its client carry no id
        ids = self._seen.get(sender)
        if ids is None:
            ids = self._seen[sender] = OrderedDict()
            while len(self._seen) > self.max_senders:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(sender)
        if packet_id in ids:
            raise RemoteProtocolError("replay", f"packet {packet_id:#x} from !{sender:08x} seen before")
        ids[packet_id] = None
        while len(ids) > self.ids_per_sender:
            ids.popitem(last=False)


def _parse(cls: type[_M], payload: bytes) -> _M:
    message = cls()
    try:
        message.ParseFromString(payload)
    except DecodeError:
        raise RemoteProtocolError("malformed", f"not a {cls.__name__}") from None
    return message
