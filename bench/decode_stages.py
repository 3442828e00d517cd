"""CPU cost per event of each stage of the XML input path, on real client samples.

    .venv/bin/python bench/decode_stages.py [--events 2000] [--rounds 5]

For each sample (ATAK, iTAK, WinTAK-addressed chat, ATAK exports, and the load tool's own PLI)
it makes a stream of ``--events`` variants as a device would send them (new times, position,
course and remark text each time) and measures the process CPU time (``time.process_time_ns``,
steady on a busy machine, unlike wall-clock time) per event of:

* ``framing``: cutting the stream into frames (``XmlStreamFramer``);
* ``prechecks``: declaration strip, DOCTYPE/ENTITY/PI refusal;
* ``lxml parse``: the hardened libxml2 parse alone, one parser reused;
* ``decode (parser)``: a complete decode that always parses (``XmlDecoder(shapes=False)``, the
  decoder before shapes were learned);
* ``decode``: the complete decode as a connection runs it (``XmlDecoder``);
* ``connection``: ``CotConnection.receive_data`` + ``next_event`` over the whole stream in
  32 KiB reads: framing, decoding and classification together.

Each figure is the best of ``--rounds`` (the least disturbed by other processes). The results
of the two decoders are compared event by event, so the figures are for identical output.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable

import servers

sys.path.insert(0, str(servers.ROOT / "src"))

from rallypoint.loadgen.events import make_identity, xml_event
from rallypoint.protocol import CotConnection, EventReceived, Limits, XmlDecoder
from rallypoint.protocol.framing import XmlStreamFramer
from rallypoint.protocol.xmlsafe import new_parser, parse_document, reject_markup_declarations, strip_declaration

SAMPLES = servers.ROOT / "tests" / "data" / "samples"
NAMES = {
    "ATAK PLI": "01_sa_pli_atak_civ_taky_fixture.xml",
    "minimal PLI": "01b_sa_pli_minimal_taky_fixture.xml",
    "iTAK marker": "03_marker_itak_empty_marti_taky_fixture.xml",
    "ATAK chat to WinTAK": "04_chat_p2p_atak_takserver_comment.xml",
    "ATAK group chat": "05_chat_group_atak_takserver_comment.xml",
    "ATAK direct chat": "06_chat_direct_atak_taky_fixture.xml",
    "ATAK spot marker": "20_atak_export_Marker_Spot.xml",
    "ATAK 911 alert": "11_emergency_911_alert_takserver_test.xml",
}
_TIMES = re.compile(rb"\b(time|start|stale)=(['\"])[^'\"]*\2")
_LAT = re.compile(rb"\blat=(['\"])[^'\"]*\1")
_COURSE = re.compile(rb"\bcourse=(['\"])[^'\"]*\1")
_REMARKS = re.compile(rb"(<remarks[^>]*>)[^<]*(</remarks>)")


def variants(sample: bytes, count: int) -> list[bytes]:
    """``count`` versions of ``sample`` with the values a device changes from one report to the next."""
    out = []
    for k in range(count):
        ms = 1_700_000_000_000 + 1_000 * k + k % 997
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
        data = _TIMES.sub(lambda m, s=stamp: m[1] + b"=" + m[2] + s.encode() + m[2], sample)
        data = _LAT.sub(lambda m, k=k: b"lat=" + m[1] + f"{10 + k * 1e-6:.6f}".encode() + m[1], data, count=1)
        data = _COURSE.sub(lambda m, k=k: b"course=" + m[1] + f"{k % 360}.5".encode() + m[1], data, count=1)
        data = _REMARKS.sub(lambda m, k=k: m[1] + f"message {k}".encode() + m[2], data, count=1)
        out.append(data)
    return out


def cpu_per_event(run: Callable[[], object], events: int, rounds: int) -> float:
    """Best CPU microseconds per event over ``rounds`` runs of ``run`` (which handles ``events``)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time_ns()
        run()
        best = min(best, (time.process_time_ns() - start) / events / 1000)
    return best


def measure(label: str, stream: list[bytes], rounds: int) -> list[str]:
    """One table row per stage for one sample's stream."""
    limits = Limits()
    n = len(stream)
    bodies = [strip_declaration(data) for data in stream]
    joined = b"\n".join(stream)
    parser = new_parser()

    def framing() -> None:
        framer = XmlStreamFramer(Limits(max_buffer_bytes=len(joined) + 1))
        framer.feed(joined)
        while framer.next_frame() is not None:
            pass

    def prechecks() -> None:
        for data in stream:
            reject_markup_declarations(strip_declaration(data))

    def lxml_parse() -> None:
        for body in bodies:
            parse_document(body, limits, parser)

    def decode_with(shapes: bool) -> Callable[[], None]:
        def run() -> None:
            decoder = XmlDecoder(limits, shapes=shapes)
            for data in stream:
                decoder.decode(data)

        return run

    def connection() -> None:
        conn = CotConnection(limits)
        for i in range(0, len(joined), 32 * 1024):
            conn.receive_data(joined[i : i + 32 * 1024])
            while isinstance(conn.next_event(), EventReceived):
                pass

    reference, fast = XmlDecoder(limits, shapes=False), XmlDecoder(limits)
    if [reference.decode(d) for d in stream] != [fast.decode(d) for d in stream]:
        raise SystemExit(f"{label}: the decoders disagree")
    stages = [
        ("framing", framing),
        ("prechecks", prechecks),
        ("lxml parse", lxml_parse),
        ("decode (parser)", decode_with(False)),
        ("decode", decode_with(True)),
        ("connection", connection),
    ]
    cells = [f"{cpu_per_event(run, n, rounds):.1f}" for _, run in stages]
    return [f"| {label} | {len(bodies[0])} | " + " | ".join(cells) + " |"]


def main() -> int:
    parser = argparse.ArgumentParser(description="CPU per event of each XML input stage.")
    parser.add_argument("--events", type=int, default=2000, help="events per sample stream")
    parser.add_argument("--rounds", type=int, default=5, help="runs per figure; the best counts")
    args = parser.parse_args()
    streams = {label: variants((SAMPLES / name).read_bytes(), args.events) for label, name in NAMES.items()}
    ident = make_identity(7, "stages")
    streams["load tool PLI"] = [
        xml_event(ident, 1_700_000_000_000 + k, f"rpbench@{1_700_000_000_000_000_000 + k:019d}")
        for k in range(args.events)
    ]
    print(f"CPU us per event (best of {args.rounds} runs of {args.events} events)\n")
    print("| sample | bytes | framing | prechecks | lxml parse | decode (parser) | decode | connection |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, stream in streams.items():
        for line in measure(label, stream, args.rounds):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
