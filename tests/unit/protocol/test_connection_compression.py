"""Deflate stream compression negotiated on top of TAK protocol 1: the server and client connections.

The two sans-IO ends talk to each other in memory; hostile input is fed to the server end.
"""

from __future__ import annotations

import random
import zlib

import pytest

from rallypoint.errors import LimitExceeded, LocalProtocolError, RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol import (
    NEED_DATA,
    CotConnection,
    EventReceived,
    Limits,
    UpgradeRequested,
    WireFormat,
    control,
    encode_for_wire,
    parse_event,
)
from rallypoint.protocol.client_connection import ClientConnection, Negotiation
from rallypoint.protocol.compression import StreamCompressor
from rallypoint.protocol.wire import encode_varint
from tests.unit.protocol.test_connection import NOW, control_event, events, request

LIMITS = Limits()


def pli_event(pli_bytes: bytes, k: int = 0) -> CotEvent:
    return parse_event(pli_bytes.replace(b'lat="', f'lat="{k % 9}'.encode(), 1), LIMITS)


def client_events(conn: ClientConnection) -> list[CotEvent]:
    out = []
    while (ev := conn.next_event()) is not NEED_DATA:
        assert isinstance(ev, EventReceived), ev
        out.append(ev.event)
    return out


def upgraded_pair(*, offer: bool = True, ask: bool = True) -> tuple[CotConnection, ClientConnection, bytes]:
    """Server and client after the negotiation; also the request the client sent."""
    server = CotConnection(LIMITS, offer_compression=offer)
    client = ClientConnection(LIMITS, protobuf=True, compression=control.DEFLATE if ask else None)
    client.receive_data(server.announce(NOW, "srv-uid"))
    assert client_events(client) == [] and client.announced
    assert client.negotiation is Negotiation.REQUESTED
    with pytest.raises(LocalProtocolError):
        client.send(b"<event/>")  # the protocol forbids sending while the request is pending
    sent = client.data_to_send()
    server.receive_data(sent)
    got = events(server)
    assert len(got) == 1 and isinstance(got[0], UpgradeRequested)
    client.receive_data(server.respond_upgrade(True, NOW))
    assert client_events(client) == []
    assert client.negotiation is Negotiation.UPGRADED and client.wire is WireFormat.PROTOBUF
    return server, client, sent


def test_compression_negotiated_and_both_directions_carry_events(pli_bytes: bytes) -> None:
    server, client, sent = upgraded_pair()
    assert b'<RallypointCompression method="deflate"/>' in sent
    assert server.compressed and client.compressed
    # Server -> client: frames encoded once (shared by receivers), compressed per connection, one batch.
    frames = b"".join(encode_for_wire(pli_event(pli_bytes, k), WireFormat.PROTOBUF) for k in range(30))
    wire = server.send_data(frames)
    assert wire[:1] != b"\xbf" and len(wire) < len(frames) / 4
    client.receive_data(wire)
    received = client_events(client)
    assert [e.point.lat for e in received] == [pli_event(pli_bytes, k).point.lat for k in range(30)]
    # Client -> server, delivered one byte at a time.
    data = client.send(pli_bytes) + client.send(pli_event(pli_bytes, 5))
    for i in range(len(data)):
        server.receive_data(data[i : i + 1])
    got = events(server)
    assert [type(e) for e in got] == [EventReceived, EventReceived]
    assert isinstance(got[1], EventReceived) and got[1].event.point.lat == pli_event(pli_bytes, 5).point.lat
    stats = server.statistics()
    assert stats["sent_wire_bytes"] == len(wire) and stats["received_wire_bytes"] == len(data)
    assert stats["received_frame_bytes"] > stats["received_wire_bytes"]
    # Pongs go through the same stream.
    client.receive_data(server.pong(NOW))
    assert client_events(client) == []


def test_request_bytes_after_the_request_in_one_chunk_are_inflated(pli_bytes: bytes) -> None:
    server = CotConnection(LIMITS, offer_compression=True)
    server.announce(NOW, "srv-uid")
    req = control.request("srv-uid", NOW, compression=control.DEFLATE)
    first = StreamCompressor().compress(encode_for_wire(pli_event(pli_bytes), WireFormat.PROTOBUF))
    server.receive_data(encode_for_wire(req, WireFormat.XML) + first)
    assert events(server) == [UpgradeRequested(1, "deflate")]
    reply = parse_event(server.respond_upgrade(True, NOW), LIMITS)
    assert control.response_status(reply, LIMITS) == (True, "deflate")
    got = events(server)
    assert len(got) == 1 and isinstance(got[0], EventReceived)


def test_standard_request_is_answered_exactly_as_before() -> None:
    server = CotConnection(LIMITS, offer_compression=True)
    offer = parse_event(server.announce(NOW, "srv-uid"), LIMITS)
    # The offer still reads as a standard one, with the extension as one more element.
    assert control.offered_versions(offer, LIMITS) == {1}
    assert control.offered_compression(offer, LIMITS) == {"deflate"}
    assert offer.detail.xml.startswith(b'<TakControl><TakProtocolSupport version="1"/>')
    server.receive_data(request())
    assert events(server) == [UpgradeRequested(1, None)]
    reply = server.respond_upgrade(True, NOW)
    assert b"Rallypoint" not in reply and b'<TakControl><TakResponse status="true"/></TakControl>' in reply
    assert server.wire is WireFormat.PROTOBUF and not server.compressed
    frame = encode_for_wire(parse_event(request(), LIMITS), WireFormat.PROTOBUF)
    assert server.send_data(frame) == frame
    assert server.max_send_size(1000) == 1000


def test_server_setting_off_gives_plain_protobuf_even_to_a_client_that_asks(pli_bytes: bytes) -> None:
    server, client, sent = upgraded_pair(offer=False)
    # Not offered: the client does not even ask.
    assert b"RallypointCompression" not in sent
    assert not server.compressed and not client.compressed
    client.receive_data(server.send_data(encode_for_wire(pli_event(pli_bytes), WireFormat.PROTOBUF)))
    assert len(client_events(client)) == 1
    # A client asking anyway gets a plain response.
    server = CotConnection(LIMITS, offer_compression=False)
    server.receive_data(encode_for_wire(control.request("srv", NOW, compression="deflate"), WireFormat.XML))
    assert events(server) == [UpgradeRequested(1, None)]
    assert b"RallypointCompression" not in server.respond_upgrade(True, NOW)
    assert not server.compressed


def test_unknown_method_is_ignored_and_a_declined_upgrade_stays_xml() -> None:
    server = CotConnection(LIMITS, offer_compression=True)
    server.receive_data(encode_for_wire(control.request("srv", NOW, compression="zstd"), WireFormat.XML))
    assert events(server) == [UpgradeRequested(1, None)]
    server = CotConnection(LIMITS, offer_compression=True)
    server.receive_data(encode_for_wire(control.request("srv", NOW, compression="deflate"), WireFormat.XML))
    assert events(server) == [UpgradeRequested(1, "deflate")]
    reply = server.respond_upgrade(False, NOW)
    assert b"RallypointCompression" not in reply
    assert server.wire is WireFormat.XML and not server.compressed


def test_client_against_standard_and_misbehaving_servers() -> None:
    # A standard server (TAK Server's offer, no extension) answers a plain "true": plain protobuf.
    client = ClientConnection(LIMITS, compression="deflate")
    client.receive_data(control_event("t-x-takp-v", b'<TakControl><TakProtocolSupport version="1"/></TakControl>'))
    assert client_events(client) == []
    assert b"RallypointCompression" not in client.data_to_send()
    client.receive_data(control_event("t-x-takp-r", b'<TakControl><TakResponse status="true"/></TakControl>'))
    assert client_events(client) == [] and client.wire is WireFormat.PROTOBUF and not client.compressed
    # A refusal keeps XML.
    client = ClientConnection(LIMITS, compression="deflate")
    client.receive_data(CotConnection(LIMITS, offer_compression=True).announce(NOW, "s"))
    client_events(client)
    client.receive_data(control_event("t-x-takp-r", b'<TakControl><TakResponse status="false"/></TakControl>'))
    assert client_events(client) == [] and client.negotiation is Negotiation.NONE and client.wire is WireFormat.XML
    # Confirming compression nobody asked for would make the rest unreadable: fatal.
    client = ClientConnection(LIMITS, protobuf=True)
    client.receive_data(CotConnection(LIMITS, offer_compression=True).announce(NOW, "s"))
    client_events(client)
    assert b"RallypointCompression" not in client.data_to_send()
    client.receive_data(control_event(
        "t-x-takp-r", b'<TakControl><TakResponse status="true"/><RallypointCompression method="deflate"/></TakControl>'
    ))
    with pytest.raises(RemoteProtocolError) as bad:
        client.next_event()
    assert bad.value.fatal and bad.value.reason == "takp_bad_response"


def test_deflate_bomb_is_fatal_before_it_is_inflated() -> None:
    server, _, _ = upgraded_pair()
    # One oversized frame the framer would skip by its length (not junk, so the garbage guard stays
    # quiet), then 64 MiB of zeros: they compress to about 64 KiB; inflating it all is the attack.
    bomb = StreamCompressor().compress(b"\xbf" + encode_varint(LIMITS.max_skip_bytes) + b"\0" * (64 * 1024 * 1024))
    server.receive_data(bomb[: 60 * 1024])
    with pytest.raises(RemoteProtocolError) as caught:
        events(server)
    assert caught.value.fatal and caught.value.reason == "compression_bomb"


def test_garbage_after_the_switch_is_fatal() -> None:
    server, _, _ = upgraded_pair()
    server.receive_data(b"\xbf\x05hello this is not deflate at all \xff\xff\xff\xff")
    with pytest.raises(RemoteProtocolError) as caught:
        events(server)
    assert caught.value.fatal and caught.value.reason == "compression_corrupt"


def test_a_finished_deflate_stream_is_fatal() -> None:
    server, _, _ = upgraded_pair()
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    server.receive_data(z.compress(b"\xbf\x00") + z.flush(zlib.Z_FINISH) + b"more")
    with pytest.raises(RemoteProtocolError) as caught:
        events(server)
    assert caught.value.fatal and caught.value.reason == "compression_corrupt"


def test_compressed_input_piling_up_undrained_is_fatal() -> None:
    server, _, _ = upgraded_pair()
    chunk = StreamCompressor().compress(bytes(range(256)) * 64)
    with pytest.raises(LimitExceeded):
        for _ in range(LIMITS.max_buffer_bytes // len(chunk) + 2):
            server.receive_data(chunk)


def test_budget_bound_holds_for_incompressible_batches() -> None:
    server, _, _ = upgraded_pair()
    rng = random.Random(3)
    for size in (0, 1, 100, 4096, 65_535, 65_536, 300_000):
        data = rng.randbytes(size)
        assert len(server.send_data(data)) <= server.max_send_size(size)
