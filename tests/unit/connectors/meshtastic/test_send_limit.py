"""What goes into the mesh fits the payload current firmware decodes (233 bytes); what earlier
firmware sent (up to 237) is still read."""

from __future__ import annotations

import random
import string

from meshtastic.protobuf import portnums_pb2

from rallypoint.connectors.meshtastic.outbound import outgoing
from rallypoint.connectors.meshtastic.packets import MAX_PAYLOAD, MAX_SEND_PAYLOAD, MeshInbound
from rallypoint.connectors.meshtastic.tak import Kind, TakCodec, TakMessage
from rallypoint.errors import RemoteProtocolError
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.routing.envelope import Envelope, Origin
from tests.support.cot_client import chat
from tests.support.meshtastic import packet

NOW = 1_700_000_000_000
TAK = TakCodec()
# Text that compresses poorly: 166 characters of it make a 236-byte TAKPacket, between the two limits.
_RNG = random.Random(1)
TEXT = "".join(_RNG.choice(string.ascii_letters + string.digits + " .,") for _ in range(166))


def test_the_limits_are_the_protobufs_and_the_earlier_ones() -> None:
    assert (MAX_SEND_PAYLOAD, MAX_PAYLOAD) == (233, 237)


def test_a_chat_between_the_two_limits_is_shortened_to_what_firmware_decodes() -> None:
    event = parse_event(chat("ANDROID-0123456789abcdef", "VIPER", to_uid=None, to_cs=None, text=TEXT), Limits())
    item = outgoing(Envelope(event, Origin(session_id="tcp-1", node="n"), NOW), tak=TAK,
                    send=frozenset({"chat"}), send_groups=frozenset(), own_session="mesh")
    assert item is not None and len(item.payload) <= MAX_SEND_PAYLOAD
    sent = TAK.decode_v1(item.payload)
    whole = TakMessage(kind=Kind.CHAT, uid=sent.uid, callsign=sent.callsign, message=TEXT, to=sent.to)
    assert MAX_SEND_PAYLOAD < len(TAK.encode_v1(whole, compress=True)) <= MAX_PAYLOAD  # the case in question
    assert sent.message.endswith("…") and TEXT.startswith(sent.message[:-1])


def test_payloads_up_to_the_earlier_limit_are_read_and_longer_ones_refused() -> None:
    inbound = MeshInbound(TAK)
    text = ("x" * MAX_PAYLOAD).encode()
    (event,) = inbound.packet(packet(7, portnums_pb2.TEXT_MESSAGE_APP, text, 1), NOW).events
    assert event.type == "b-t-f"
    try:
        inbound.packet(packet(7, portnums_pb2.TEXT_MESSAGE_APP, text + b"x", 2), NOW)
    except RemoteProtocolError as exc:
        assert exc.reason == "oversize"
    else:
        raise AssertionError("a payload past 237 bytes was read")
