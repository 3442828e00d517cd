"""Bytes per position report on the wire: XML, TAK protobuf, protobuf + stream deflate, protobuf + zstd dictionary.

Run: .venv/bin/python bench/bytes_per_position.py [--reports N]
Positions are a realistic ATAK PLI for 20 units moving a few metres between reports.
"""

from __future__ import annotations

import argparse
import random

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


def reports(n: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    units = [(f"ANDROID-{rng.getrandbits(64):016x}", f"UNIT-{i}", 38.0 + rng.random(), -77.0 + rng.random())
             for i in range(20)]
    now = 1_718_000_000_000
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=1000)
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


if __name__ == "__main__":
    main()
