"""Which server traffic crosses into a mesh, and in what form (pure: envelope in, packet out).

Chosen traffic only: events from the mesh's ``send_groups`` (never one that came from a mesh),
of the kinds configured: TAK users' positions (``pli``; coalesced per uid by the budget),
GeoChats (``chat``; acknowledged by the mesh, which becomes a delivery receipt) and emergency
alerts (``emergency``; said as a chat line, sent before everything else). Positions and chats
use ``TAKPacket`` (port 72) with unishox2-compressed strings, which every plugin version reads;
markers, routes, drawn shapes, range-and-bearing lines and aircraft (``marker``, ``route``,
``shape``, ``rab``, ``aircraft``) use ``TAKPacketV2`` (port 78; ``v2_items.py``, ``v2_shapes.py``),
compressed with the dictionary their type uses, or uncompressed when it is missing.
"""

from __future__ import annotations

import dataclasses

from meshtastic.protobuf import atak_pb2, portnums_pb2

from rallypoint.connectors.meshtastic.budget import Lane, Outgoing
from rallypoint.connectors.meshtastic.mesh_cot import ALL_CHAT_ROOMS, from_mesh, to_tak_message
from rallypoint.connectors.meshtastic.packets import MAX_SEND_PAYLOAD
from rallypoint.connectors.meshtastic.tak import Kind, TakCodec, TakMessage
from rallypoint.connectors.meshtastic.v2_items import is_marker, marker_packet, route_packet, shrink_route
from rallypoint.connectors.meshtastic.v2_shapes import (
    SHAPE_KINDS,
    aircraft_packet,
    is_aircraft,
    rab_packet,
    shape_packet,
    shrink,
)
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.routing.envelope import ANON_GROUP, Envelope


def outgoing(envelope: Envelope, *, tak: TakCodec, send: frozenset[str], send_groups: frozenset[str],
             own_session: str) -> Outgoing | None:
    """The packet ``envelope`` becomes in the mesh, or None when it does not cross."""
    event = envelope.event
    if envelope.origin.session_id == own_session or from_mesh(event):
        return None  # never echo mesh traffic back into the mesh
    if not (envelope.origin.groups & (send_groups or frozenset({ANON_GROUP}))):
        return None
    if event.type.startswith("b-a-o-") or event.detail.emergency is not None:
        if "emergency" not in send or event.type == "b-a-o-can":
            return None
        what = (event.detail.emergency.type if event.detail.emergency else None) or event.type
        who = event.detail.callsign or event.uid
        line = f"EMERGENCY {what}: {who} at {event.point.lat:.5f},{event.point.lon:.5f}"
        msg = TakMessage(kind=Kind.CHAT, uid=event.uid, callsign=str(who), message=line[:180], to=ALL_CHAT_ROOMS)
        return _packet(tak, msg, Lane.EMERGENCY, key=event.uid, want_ack=True)
    if event.type == "b-t-f":
        if "chat" not in send:
            return None
        try:
            chat = to_tak_message(event)
        except RemoteProtocolError:
            return None
        return None if chat is None else _packet(tak, chat, Lane.CHAT, key=event.uid, want_ack=True)
    item = _item(event, send, envelope.received_ms)
    if item is not None:
        # Aircraft wait behind the users' positions; items with them: the latest version of each, in turn.
        return _v2(tak, item, key=event.uid, lane=Lane.BULK if item.HasField("aircraft") else Lane.POSITION)
    if event.type.startswith("a-f-G-U-C") and event.detail.takv and "pli" in send:
        pli = to_tak_message(event)
        return None if pli is None else _packet(tak, pli, Lane.POSITION, key=event.uid, want_ack=False)
    return None


def _item(event: CotEvent, send: frozenset[str], now_ms: int) -> atak_pb2.TAKPacketV2 | None:
    """The V2 packet of a marker, route, shape, ranging line or aircraft of a kind in ``send``."""
    if event.type == "b-m-r":
        return route_packet(event, now_ms) if "route" in send else None
    if event.type in SHAPE_KINDS:
        return shape_packet(event, now_ms) if "shape" in send else None
    if event.type == "u-rb-a":
        return rab_packet(event, now_ms) if "rab" in send else None
    if is_marker(event):
        return marker_packet(event, now_ms) if "marker" in send else None
    if is_aircraft(event):
        return aircraft_packet(event, now_ms) if "aircraft" in send else None
    return None


def _v2(tak: TakCodec, packet: atak_pb2.TAKPacketV2, *, key: str, lane: Lane) -> Outgoing | None:
    payload = tak.pack_v2(packet)
    while len(payload) > MAX_SEND_PAYLOAD and (shrink_route(packet) if packet.HasField("route") else shrink(packet)):
        payload = tak.pack_v2(packet)  # a coarser item rather than none
    if len(payload) > MAX_SEND_PAYLOAD:
        return None
    return Outgoing(port=portnums_pb2.ATAK_PLUGIN_V2, payload=payload, lane=lane, key=key)


def _packet(tak: TakCodec, msg: TakMessage, lane: Lane, *, key: str, want_ack: bool) -> Outgoing | None:
    payload = tak.encode_v1(msg, compress=True)
    while len(payload) > MAX_SEND_PAYLOAD and msg.kind is Kind.CHAT and len(msg.message) > 8:
        # A long chat line is shortened until it fits one LoRa packet (never split: a lost part loses all).
        msg = dataclasses.replace(msg, message=msg.message[: int(len(msg.message) * 0.8)] + "…")
        payload = tak.encode_v1(msg, compress=True)
    if len(payload) > MAX_SEND_PAYLOAD:
        return None
    return Outgoing(port=portnums_pb2.ATAK_PLUGIN, payload=payload, lane=lane, key=key, want_ack=want_ack)
