"""Deflate-compressed TAK protocol 1 streams against the real server, next to plain XML and protobuf clients.

The compressing and plain protobuf clients are ``rallypoint.client.CotStream``; the XML client is the
independent test client. All three exchange SA and chat both ways, then the wire bytes each
protobuf client reads for the same position reports are compared.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from rallypoint.client import CotStream
from rallypoint.model.cot import CotEvent
from rallypoint.protocol import NEED_DATA, Limits
from rallypoint.protocol.client_connection import ClientConnection, Negotiation
from rallypoint.protocol.compression import StreamCompressor
from rallypoint.protocol.wire import WireFormat, encode_varint
from tests.integration.test_native_api import tls_context
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.server import ServerProcess

REPORTS = 200
UNITS = 20


async def receive_until(stream: CotStream, predicate: Callable[[CotEvent], bool], timeout: float = 10.0) -> CotEvent:
    """Read events from ``stream`` until one matches (the deadline bounds the whole wait)."""
    while True:
        event = await stream.receive(timeout)
        if predicate(event):
            return event


def pli(k: int) -> bytes:
    """Report ``k`` of a moving unit, with the detail an ATAK device sends."""
    unit = k % UNITS
    extra = (
        f'<uid Droid="UNIT-{unit}"/><precisionlocation altsrc="GPS" geopointsrc="GPS"/>'
        f'<status battery="{90 - k % 30}"/><track course="{k * 3.7 % 360:.1f}" speed="{k % 5 * 1.3:.1f}"/>'
    )
    return sa(f"ANDROID-unit-{unit:02d}", f"UNIT-{unit}", extra=extra, lat=38.5 + unit * 0.01 + k * 1e-5,
              lon=-77.2 + unit * 0.01 + k * 1e-5)


async def test_compressed_protobuf_and_xml_clients_exchange_sa_and_chat_and_compression_pays(
    server: ServerProcess, clients: list[object]
) -> None:
    port = server.ports["cot"]
    zipped = await CotStream.connect("127.0.0.1", port, compress=True)
    clients.append(zipped)
    proto = await CotStream.connect("127.0.0.1", port, protobuf=True)
    clients.append(proto)
    xml = await CotClient.connect(port)
    clients.append(xml)
    assert zipped.wire is WireFormat.PROTOBUF and zipped.compressed
    assert proto.wire is WireFormat.PROTOBUF and not proto.compressed

    # SA both ways: every client sees the other two.
    await zipped.send(sa("uid-zip", "ZIP"))
    await proto.send(sa("uid-pb", "PB"))
    await xml.send(sa("uid-xml", "XML"))
    seen_by_zip: set[str] = set()
    while seen_by_zip != {"uid-pb", "uid-xml"}:
        seen_by_zip.add((await receive_until(zipped, lambda e: e.uid in {"uid-pb", "uid-xml"})).uid)
    assert (await receive_until(proto, lambda e: e.uid == "uid-zip")).point.lat == 39.1
    await xml.wait_uid("uid-zip")
    await xml.wait_uid("uid-pb")

    # Chat both ways between the compressing client and each of the others.
    await xml.send(chat("uid-xml", "XML", to_uid="uid-zip", to_cs="ZIP", text="xml to zip"))
    got = await receive_until(zipped, lambda e: e.type == "b-t-f")
    assert got.uid.startswith("GeoChat.uid-xml.") and b"xml to zip" in got.detail.xml
    await zipped.send(chat("uid-zip", "ZIP", to_uid="uid-xml", to_cs="XML", text="zip to xml"))
    back = await xml.wait_for(lambda e: e.type == "b-t-f" and e.uid.startswith("GeoChat.uid-zip."))
    assert b"zip to xml" in back.detail.xml
    await zipped.send(chat("uid-zip", "ZIP", to_uid="uid-pb", to_cs="PB", text="zip to pb"))
    to_pb = await receive_until(proto, lambda e: e.type == "b-t-f")
    assert to_pb.uid.startswith("GeoChat.uid-zip.") and b"zip to pb" in to_pb.detail.xml
    await proto.send(chat("uid-pb", "PB", to_uid="uid-zip", to_cs="ZIP", text="pb to zip"))
    from_pb = await receive_until(zipped, lambda e: e.type == "b-t-f")
    assert from_pb.uid.startswith("GeoChat.uid-pb.") and b"pb to zip" in from_pb.detail.xml

    # The same position reports (UNITS devices, each its own SA) reach both protobuf clients:
    # compare the bytes each read for them.
    units = [await CotClient.connect(port) for _ in range(UNITS)]
    clients.extend(units)
    start = {zipped: zipped.bytes_received, proto: proto.bytes_received}
    for k in range(REPORTS):
        await units[k % UNITS].send(pli(k))
    for unit, device in enumerate(units):
        await device.send(cot(f"end-marker-{unit}"))
    per_report: dict[CotStream, float] = {}
    for stream in (zipped, proto):
        reports = 0
        ends: set[str] = set()
        while len(ends) < UNITS:
            event = await stream.receive(10)
            if event.uid.startswith("end-marker-"):
                ends.add(event.uid)
            reports += event.uid.startswith("ANDROID-unit-")
        # Latest-wins coalescing may merge reports for a reader that fell behind: count what arrived.
        assert reports >= UNITS
        per_report[stream] = (stream.bytes_received - start[stream]) / reports
    assert per_report[zipped] < 0.5 * per_report[proto], per_report


def rejected_total(server: ServerProcess, reason: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    pattern = rf'rallypoint_events_rejected_total\{{reason="{reason}"[^}}]*\}} (\S+)'
    return sum(float(v) for v in re.findall(pattern, text))


async def negotiated_raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, ClientConnection]:
    """A socket that negotiated compression, left to the test to write anything on."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = ClientConnection(Limits(), compression="deflate")
    async with asyncio.timeout(10):
        while conn.negotiation is not Negotiation.UPGRADED:
            chunk = await reader.read(65536)
            assert chunk, "closed during negotiation"
            conn.receive_data(chunk)
            while not isinstance(conn.next_event(), type(NEED_DATA)):
                pass
            if out := conn.data_to_send():
                writer.write(out)
    assert conn.compressed
    return reader, writer, conn


async def read_to_eof(reader: asyncio.StreamReader) -> None:
    """Until the server closed the connection (a reset counts: it closed with our input unread)."""
    async with asyncio.timeout(10):
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass


BOMB = b"\xbf" + encode_varint(16 * 1024 * 1024) + b"\0" * (32 * 1024 * 1024)


@pytest.mark.parametrize(
    ("reason", "payload"),
    [
        ("compression_bomb", StreamCompressor().compress(BOMB)),
        ("compression_corrupt", b"this is not a deflate stream at all" * 10),
    ],
)
async def test_hostile_compressed_input_closes_only_that_session(
    server: ServerProcess, clients: list[object], reason: str, payload: bytes
) -> None:
    port = server.ports["cot"]
    witness = await CotStream.connect("127.0.0.1", port, compress=True)
    clients.append(witness)
    friend = await CotClient.connect(port)
    clients.append(friend)
    reader, writer, _ = await negotiated_raw(port)
    before = rejected_total(server, reason)
    writer.write(payload)
    await writer.drain()
    await read_to_eof(reader)  # the server closed this session
    writer.close()
    assert rejected_total(server, reason) == before + 1
    # Other sessions, compressed or not, carry on.
    await friend.send(sa("uid-friend", "FRIEND"))
    assert (await receive_until(witness, lambda e: e.uid == "uid-friend")).detail.callsign == "FRIEND"
    await witness.send(sa("uid-witness", "WITNESS"))
    await friend.wait_uid("uid-witness")


async def test_compression_over_tls(server: ServerProcess, clients: list[object], tmp_path: Path) -> None:
    port = server.ports["tls"]
    alice = await CotStream.connect(
        "127.0.0.1", port, ssl=tls_context(server, "alice", tmp_path / "a"), compress=True
    )
    clients.append(alice)
    bob = await CotStream.connect("127.0.0.1", port, ssl=tls_context(server, "bob", tmp_path / "b"), compress=True)
    clients.append(bob)
    assert alice.compressed and bob.compressed
    await alice.send(sa("uid-alice", "ALICE"))
    assert (await receive_until(bob, lambda e: e.uid == "uid-alice")).detail.callsign == "ALICE"
    await bob.send(chat("uid-bob", "BOB", to_uid="uid-alice", to_cs="ALICE", text="over tls"))
    got = await receive_until(alice, lambda e: e.type == "b-t-f")
    assert b"over tls" in got.detail.xml


def test_load_tool_speaks_compressed_protobuf(server: ServerProcess) -> None:
    cmd = [
        sys.executable, "-m", "rallypoint.cli.bench", "--host", "127.0.0.1", "--port", str(server.ports["cot"]),
        "--proto", "protobuf-deflate", "--clients", "4", "--rate", "5", "--duration", "2", "--json",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, (done.stdout, done.stderr)
    report = json.loads(done.stdout)
    assert report["proto"] == "protobuf-deflate"
    # Every event reached the three other clients through compressed streams both ways.
    assert report["expected"] == report["sent"] * 3 and report["sent"] > 0
    assert report["delivery_ratio"] == 1.0
