"""Bytes per position report on the wire: XML, TAK protobuf, protobuf + stream deflate, protobuf + zstd dictionary.

Run: .venv/bin/python bench/bytes_per_position.py [--reports N] [--no-server]
Positions are a realistic ATAK PLI for 20 units moving a few metres between reports.

The first rows are codec-level (the encoders and compressors on their own). Unless ``--no-server``,
the same reports then go through a real Rallypoint server: 20 devices send them as XML, one report
at a time (each is delivered before the next is sent, so every report is its own write, as on a
quiet narrow link), and three receivers count the bytes they read from their sockets: an XML
stream, a TAK protobuf stream, and a protobuf stream that negotiated deflate compression.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from rallypoint.client import CotStream
from rallypoint.model.cot import Point
from rallypoint.protocol.compression import COT_DICTIONARY, MessageCodec, StreamCompressor
from rallypoint.protocol.wire import WireFormat, encode_for_wire
from rallypoint.protocol.xml_codec import make_event

DETAIL = (
    '<takv device="SAMSUNG SM-G998U" platform="ATAK-CIV" os="33" version="4.10.0.1"/>'
    '<contact endpoint="*:-1:stcp" phone="" callsign="{cs}"/><uid Droid="{cs}"/>'
    '<precisionlocation altsrc="GPS" geopointsrc="GPS"/><__group role="Team Member" name="Cyan"/>'
    '<status battery="{bat}"/><track course="{course:.1f}" speed="{speed:.1f}"/>'
)


UNITS = 20


def reports(n: int, seed: int = 7, now: int = 1_718_000_000_000) -> list[tuple[bytes, bytes]]:
    """``n`` reports (XML, protobuf frame) of 20 units in turn, unit ``k % 20`` sending report ``k``."""
    rng = random.Random(seed)
    units = [(f"ANDROID-{rng.getrandbits(64):016x}", f"UNIT-{i}", 38.0 + rng.random(), -77.0 + rng.random())
             for i in range(UNITS)]
    out = []
    for k in range(n):
        uid, cs, lat, lon = units[k % len(units)]
        t = now + k * 2000
        event = make_event(
            uid=uid, type="a-f-G-U-C", how="m-g", time=t, start=t, stale=t + 75_000,
            point=Point(lat=lat + k * 1e-5, lon=lon + k * 1e-5, hae=42.0 + k % 7, ce=4.9, le=9999999.0),
            detail_xml=DETAIL.format(cs=cs, bat=90 - k % 30, course=k * 3.7 % 360, speed=k % 5 * 1.3).encode(),
        )
        out.append((encode_for_wire(event, WireFormat.XML), encode_for_wire(event, WireFormat.PROTOBUF)))
    return out


async def _drain(stream: CotStream) -> None:
    async for _ in stream:
        pass


async def _through_server(port: int, data: list[tuple[bytes, bytes]]) -> list[tuple[str, float]]:
    """Send ``data``'s XML through the server at ``port``; bytes per report each receiver read."""
    names = ("server: CoT XML stream", "server: TAK protobuf stream", "server: protobuf + negotiated deflate")
    receivers = [
        await CotStream.connect("127.0.0.1", port, wait_ready=True),
        await CotStream.connect("127.0.0.1", port, protobuf=True),
        await CotStream.connect("127.0.0.1", port, compress=True),
    ]
    assert receivers[2].compressed, "the server did not grant compression"
    senders = [await CotStream.connect("127.0.0.1", port, wait_ready=True) for _ in range(UNITS)]
    async with asyncio.TaskGroup() as tasks:
        # Senders also receive everything: keep reading so the server never sees a stuck reader.
        drains = [tasks.create_task(_drain(s)) for s in senders]
        start = [r.bytes_received for r in receivers]
        for k, (xml, _) in enumerate(data):
            await senders[k % UNITS].send(xml)
            uid = xml.split(b'uid="', 1)[1].split(b'"', 1)[0].decode()
            for receiver in receivers:
                while (await receiver.receive(10)).uid != uid:
                    pass
        totals = [r.bytes_received - s for r, s in zip(receivers, start, strict=True)]
        for stream in (*senders, *receivers):
            await stream.close()
        for drain in drains:
            drain.cancel()
    return [(name, total / len(data)) for name, total in zip(names, totals, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--no-server", action="store_true", help="codec-level figures only")
    args = parser.parse_args()
    data = reports(args.reports)
    codec = MessageCodec()
    # Raw-content dictionary extended with one protobuf PLI of an unrelated unit (shared by both ends).
    pb_codec = MessageCodec(COT_DICTIONARY + reports(1, seed=99)[0][1])
    stream = StreamCompressor()
    rows = [
        ("XML", sum(len(x) for x, _ in data)),
        ("protobuf (TAK v1)", sum(len(p) for _, p in data)),
        ("protobuf + stream deflate", sum(len(stream.compress(p)) for _, p in data)),
        ("protobuf + zstd per message, CoT dictionary", sum(len(codec.compress(p)) for _, p in data)),
        ("protobuf + zstd per message, CoT+protobuf dict", sum(len(pb_codec.compress(p)) for _, p in data)),
        ("XML + zstd per message, CoT dictionary", sum(len(codec.compress(x)) for x, _ in data)),
    ]
    print(f"{'encoding':<46}{'bytes/report':>14}")
    for name, total in rows:
        print(f"{name:<46}{total / len(data):>14.1f}")
    if args.no_server:
        return
    import servers  # bench/servers.py, next to this script

    live = reports(args.reports, now=int(time.time() * 1000))
    with servers.rallypoint() as running:
        for name, per_report in asyncio.run(_through_server(running.port, live)):
            print(f"{name:<46}{per_report:>14.1f}")


if __name__ == "__main__":
    main()
