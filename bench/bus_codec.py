"""What the NATS bus costs per message: encode + decode time and bytes on NATS.

    python bench/bus_codec.py [--messages N]

Encodes and decodes ``--messages`` publications (an ATAK position report with its original XML,
a GeoChat, an emergency) with the bus codec, as a publishing node and a receiving node do, and
prints CPU microseconds per message (process time, so other work on the machine counts less),
bytes per message and the size of the event's XML. The local bus does none of this: it hands the
objects over.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rallypoint.bus.codec import BusCodec
from rallypoint.model.cot import CotEvent, Dest, Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event, parse_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience

SAMPLE = Path(__file__).parents[1] / "tests" / "data" / "samples" / "01_sa_pli_atak_civ_taky_fixture.xml"
T0 = 1_700_000_000_000

ORIGIN = Origin(session_id="rallypoint-1a2b3c:tls-17", groups=frozenset({"Cyan"}), principal="alpha",
                node="rallypoint-1a2b3c")


def _event(uid: str, cot_type: str, detail: str) -> CotEvent:
    return make_event(uid=uid, type=cot_type, how="m-g", time=T0, start=T0, stale=T0 + 60_000,
                      point=Point(52.52, 13.40, 34.0, 5.0, 9.0), detail_xml=detail.encode())


def _kinds() -> dict[str, tuple[CotEvent, Audience]]:
    groups = Audience(groups=frozenset({"Cyan"}), exclude=ORIGIN.session_id)
    chat_detail = (
        '<__chat parent="RootContactGroup" groupOwner="false" chatroom="Ops" id="ops" senderCallsign="ALPHA">'
        '<chatgrp uid0="ANDROID-1" uid1="b-1" uid2="b-2" id="ops"/></__chat>'
        '<link uid="ANDROID-1" type="a-f-G-U-C" relation="p-p"/><remarks>moving to checkpoint 2</remarks>'
    )
    return {
        # As received: the original XML travels along so receivers can forward it verbatim.
        "position (ATAK SA as received)": (parse_event(SAMPLE.read_bytes(), Limits()), groups),
        "chat to two members": (_event("GeoChat.ANDROID-1.Ops.1", "b-t-f", chat_detail),
                                Audience(dests=(Dest(uid="b-1"), Dest(uid="b-2")), exclude=ORIGIN.session_id,
                                         explicit=True)),
        "emergency": (_event("ANDROID-1-9-1-1", "b-a-o-tbl",
                             '<emergency type="911 Alert">ALPHA</emergency><contact callsign="ALPHA"/>'), groups),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    codec = BusCodec()
    print(f"{'message':40} {'xml':>6} {'bytes':>6} {'encode us':>10} {'decode us':>10} {'both us':>8}")
    for name, (cot, audience) in _kinds().items():
        envelope = Envelope(cot, ORIGIN, T0)
        data = codec.encode("rallypoint-1a2b3c:1152921504606846975", envelope, audience)
        started = time.process_time()
        for i in range(args.messages):
            codec.encode(f"rallypoint-1a2b3c:{i}", envelope, audience)
        encode_us = (time.process_time() - started) / args.messages * 1e6
        started = time.process_time()
        for _ in range(args.messages):
            codec.decode(data).envelope()
        decode_us = (time.process_time() - started) / args.messages * 1e6
        xml = len(cot.raw) if cot.raw is not None else 0
        print(f"{name:40} {xml:6d} {len(data):6d} {encode_us:10.2f} {decode_us:10.2f} {encode_us + decode_us:8.2f}")


if __name__ == "__main__":
    main()
