"""TAK Protocol v1 streaming: negotiation, 0xBF framing, and XML <-> protobuf clients seeing each other.

The protobuf side is decoded and encoded with the independent ``takproto`` package.
"""

from __future__ import annotations

import asyncio

import takproto

from tests.support.cot_client import CotClient, cot, iso, sa
from tests.support.server import ServerProcess


class ProtoClient:
    """Negotiates TAK Protocol v1 like ATAK, then speaks 0xBF-framed TakMessages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""

    @classmethod
    async def connect(cls, port: int) -> ProtoClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        await client._negotiate()
        return client

    async def _read_xml_until(self, needle: bytes) -> bytes:
        async with asyncio.timeout(10):
            while needle not in self.buf:
                chunk = await self.reader.read(65536)
                assert chunk, "connection closed during negotiation"
                self.buf += chunk
        return self.buf

    async def _negotiate(self) -> None:
        await self._read_xml_until(b"t-x-takp-v")
        await self._read_xml_until(b"</event>")
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)
        request = (
            f"<event version='2.0' uid='protouid' type='t-x-takp-q' time='{iso(now)}' start='{iso(now)}' "
            f"stale='{iso(now + timedelta(minutes=1))}' how='m-g'><point lat='0.0' lon='0.0' hae='0.0' "
            "ce='999999' le='999999'/><detail><TakControl><TakRequest version=\"1\"/></TakControl></detail></event>"
        )
        self.writer.write(request.encode())
        await self.writer.drain()
        async with asyncio.timeout(10):
            while True:
                start = self.buf.find(b"t-x-takp-r")
                end = self.buf.find(b"</event>", start) if start >= 0 else -1
                if end >= 0:
                    break
                chunk = await self.reader.read(65536)
                assert chunk, "connection closed during negotiation"
                self.buf += chunk
        end += len(b"</event>")
        response = self.buf[self.buf.rfind(b"<event", 0, start):end]
        assert b'status="true"' in response or b"status='true'" in response, response
        self.buf = self.buf[end:]

    async def send_xml_as_proto(self, xml: bytes) -> None:
        payload = takproto.xml2proto(xml.decode(), takproto.TAKProtoVer.STREAM)
        self.writer.write(bytes(payload))
        await self.writer.drain()

    async def next_message(self, timeout: float = 10.0):  # type: ignore[no-untyped-def]
        async with asyncio.timeout(timeout):
            while True:
                parsed = self._take_frame()
                if parsed is not None:
                    return parsed
                chunk = await self.reader.read(65536)
                assert chunk, "closed"
                self.buf += chunk

    def _take_frame(self):  # type: ignore[no-untyped-def]
        buf = self.buf
        if not buf:
            return None
        assert buf[0] == 0xBF, f"expected 0xBF frame, got {buf[:20]!r}"
        length, shift, i = 0, 0, 1
        while i < len(buf):
            byte = buf[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
        else:
            return None
        if len(buf) < i + length:
            return None
        frame = buf[: i + length]
        self.buf = buf[i + length:]
        return takproto.parse_proto(bytearray(frame))

    async def wait_uid(self, uid: str):  # type: ignore[no-untyped-def]
        while True:
            msg = await self.next_message()
            if msg is not None and msg.cotEvent.uid == uid:
                return msg

    def close(self) -> None:
        self.writer.close()


async def test_negotiation_and_cross_format_delivery(server: ServerProcess, clients: list[object]) -> None:
    xml_client = await CotClient.connect(server.ports["cot"])
    clients.append(xml_client)
    proto = await ProtoClient.connect(server.ports["cot"])
    try:
        # protobuf -> XML
        await proto.send_xml_as_proto(sa("proto-sender", "PROTO", extra='<uid Droid="PROTO"/>'))
        got = await xml_client.wait_uid("proto-sender")
        assert got.detail.callsign == "PROTO"
        assert got.detail.group_name == "Cyan"
        assert b"<uid Droid=" in got.detail.xml
        # XML -> protobuf (decoded by takproto)
        await xml_client.send(sa("xml-sender", "XMLSENDER"))
        msg = await proto.wait_uid("xml-sender")
        assert msg.cotEvent.detail.contact.callsign == "XMLSENDER"
        assert msg.cotEvent.detail.group.name == "Cyan"
        assert abs(msg.cotEvent.lat - 39.1) < 1e-9
        # A ping on the protobuf stream is answered with a protobuf pong.
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)
        ping = (f'<event version="2.0" uid="p-ping" type="t-x-c-t" how="m-g" time="{iso(now)}" '
                f'start="{iso(now)}" stale="{iso(now + timedelta(seconds=10))}">'
                '<point lat="0" lon="0" hae="0" ce="9999999" le="9999999"/><detail/></event>')
        await proto.send_xml_as_proto(ping.encode())
        while True:
            msg = await proto.next_message()
            if msg is not None and msg.cotEvent.type == "t-x-c-t-r":
                break
    finally:
        proto.close()


async def test_each_event_reaches_many_protobuf_and_xml_receivers(
    server: ServerProcess, clients: list[object]
) -> None:
    protos = [await ProtoClient.connect(server.ports["cot"]) for _ in range(3)]
    xmls = [await CotClient.connect(server.ports["cot"]) for _ in range(3)]
    clients.extend(xmls)
    sender = await CotClient.connect(server.ports["cot"])
    clients.append(sender)
    try:
        for i in range(5):
            await sender.send(cot(f"fan-{i}", "a-f-G-U-C"))
        for p in protos:
            for i in range(5):
                await p.wait_uid(f"fan-{i}")
        for x in xmls:
            for i in range(5):
                await x.wait_uid(f"fan-{i}")
    finally:
        for p in protos:
            p.close()
