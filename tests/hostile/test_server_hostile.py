"""Hostile input against the real server: rejected, counted and logged; nothing else is affected."""

from __future__ import annotations

import asyncio
import re
import socket

import httpx
import pytest

from tests.support.cot_client import CotClient, cot, sa
from tests.support.server import ServerProcess

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<event version="2.0" uid="laughs" type="a-f-G" how="m-g" time="2026-01-01T00:00:00Z" start="2026-01-01T00:00:00Z"
 stale="2099-01-01T00:00:00Z"><point lat="1" lon="1" hae="0" ce="0" le="0"/>
<detail><remarks>&lol3;</remarks></detail></event>"""

XXE = b"""<!DOCTYPE event [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<event version="2.0" uid="xxe" type="a-f-G" how="m-g" time="2026-01-01T00:00:00Z" start="2026-01-01T00:00:00Z"
 stale="2099-01-01T00:00:00Z"><point lat="1" lon="1" hae="0" ce="0" le="0"/>
<detail><remarks>&xxe;</remarks></detail></event>"""


def _rejected(server: ServerProcess) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for m in re.finditer(r'rallypoint_events_rejected_total\{reason="([^"]+)",transport="([^"]+)"\} ([0-9.e+]+)', text):
        out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
    return out


CASES = [
    ("billion_laughs", BILLION_LAUGHS),
    ("xxe", XXE),
    ("malformed", b"<event version='2.0' uid='x' <<<>>> </event>"),
    ("nan", cot("nan-1").replace(b'lat="39.1"', b'lat="NaN"')),
    ("inf", cot("inf-1").replace(b'lon="-120.0"', b'lon="1e999"')),
    ("lat_out_of_range", cot("lat-91").replace(b'lat="39.1"', b'lat="91"')),
    ("bad_time", cot("badtime").replace(b'time="', b'time="99999-', 1)),
    ("missing_uid", cot("x").replace(b'uid="x" ', b"")),
    ("deep", b"<event uid='deep' type='a' how='m-g' time='2026-01-01T00:00:00Z' start='2026-01-01T00:00:00Z'"
             b" stale='2099-01-01T00:00:00Z'><point lat='1' lon='1'/><detail>" + b"<a>" * 5000 + b"</a>" * 5000
             + b"</detail></event>"),
    ("oversized", cot("big", detail="<remarks>" + "x" * 300_000 + "</remarks>")),
    ("garbage", b"\x00\xff\xfe GET / HTTP/1.1\r\n\r\n random junk \x01\x02"),
]


@pytest.mark.parametrize(("name", "payload"), CASES, ids=[c[0] for c in CASES])
async def test_hostile_input_rejected_session_survives_others_unaffected(
    server: ServerProcess, clients: list[object], name: str, payload: bytes
) -> None:
    attacker = await CotClient.connect(server.ports["cot"])
    bystander = await CotClient.connect(server.ports["cot"])
    witness = await CotClient.connect(server.ports["cot"])
    clients.extend([attacker, bystander, witness])
    await bystander.send(sa("bystander", "BY"))
    await witness.wait_uid("bystander")
    before = sum(_rejected(server).values())
    await attacker.send(payload)
    # The stream resynchronises: a good event after the bad one still gets through.
    await attacker.send(sa(f"after-{name}", "AFTER"))
    got = await witness.wait_uid(f"after-{name}", timeout=10)
    assert got.detail.callsign == "AFTER"
    assert not witness.has(lambda e: e.uid in ("laughs", "xxe", "nan-1", "inf-1", "lat-91", "badtime", "big", "deep"))
    assert not any(b"root:" in r for r in witness.raw), "file contents must never leak"
    after = sum(_rejected(server).values())
    assert after > before, f"{name} was not counted as rejected"
    # The bystander's session is untouched.
    await bystander.send(cot("bystander-2", "b-m-p-s-m"))
    await witness.wait_uid("bystander-2")


async def test_hostile_protobuf_after_upgrade(server: ServerProcess, clients: list[object]) -> None:
    from tests.integration.test_protobuf_stream import ProtoClient

    witness = await CotClient.connect(server.ports["cot"])
    clients.append(witness)
    proto = await ProtoClient.connect(server.ports["cot"])
    try:
        # A varint longer than 10 bytes, a huge length prefix, then a truncated/bogus payload.
        proto.writer.write(b"\xbf" + b"\xff" * 11 + b"\x01")
        proto.writer.write(b"\xbf\xff\xff\xff\xff\x0f")
        proto.writer.write(b"\xbf\x04\x12\x03\x0a\x01")
        await proto.writer.drain()
        await proto.send_xml_as_proto(sa("proto-after", "PA"))
        await witness.wait_uid("proto-after", timeout=10)
    finally:
        proto.close()


async def test_hostile_datagrams_do_not_disturb_streams(server: ServerProcess, clients: list[object]) -> None:
    witness = await CotClient.connect(server.ports["cot"])
    clients.append(witness)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for payload in (BILLION_LAUGHS, XXE, b"\xbf\x01\xbf\xff\xff", b"", b"\x00" * 1000):
            sock.sendto(payload, ("127.0.0.1", server.ports["udp"]))
        sock.sendto(sa("udp-good", "UG"), ("127.0.0.1", server.ports["udp"]))
    finally:
        sock.close()
    await witness.wait_uid("udp-good")


async def test_connection_flood_of_garbage_closes_only_that_session(
    server: ServerProcess, clients: list[object]
) -> None:
    witness = await CotClient.connect(server.ports["cot"])
    clients.append(witness)
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["cot"])
    try:
        for _ in range(50):
            writer.write(b"<" * 20000)
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
    other = await CotClient.connect(server.ports["cot"])
    clients.append(other)
    await other.send(sa("still-fine", "OK"))
    await witness.wait_uid("still-fine")
