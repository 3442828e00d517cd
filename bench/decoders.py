"""CPU cost of each source decoder: input units (lines, frames, aircraft, features) per CPU second.

    .venv/bin/python bench/decoders.py [--lines 20000] [--rounds 5]

Each decoder gets a stream built from the published samples its tests use, varied as a live feed
varies them (other addresses, moving positions), handed over in 32 KiB reads as a runner would.
The figure is process CPU time (``time.process_time``, steady on a shared machine), best of
``--rounds``; ``obs/s`` counts the observations that came out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import servers

sys.path.insert(0, str(servers.ROOT / "src"))

from pyais import encode_dict

from rallypoint.connectors.adsb_json import AdsbJsonDecoder
from rallypoint.connectors.ais import AisDecoder
from rallypoint.connectors.aprs import AprsDecoder
from rallypoint.connectors.cot_feed import CotStreamDecoder
from rallypoint.connectors.geo_files import GeoJsonDecoder
from rallypoint.connectors.modes import ModesDecoder
from rallypoint.connectors.nmea import NmeaDecoder
from rallypoint.connectors.sbs import SbsDecoder

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
READ = 32 * 1024


def _nmea(body: str) -> bytes:
    value = 0
    for ch in body.encode():
        value ^= ch
    return f"${body}*{value:02X}\r\n".encode()


def sbs_stream(n: int) -> bytes:
    """Woodair's MSG,3/MSG,4 lines for n/2 aircraft positions (a velocity line before each)."""
    lines = []
    for k in range(n // 2):
        icao = f"{0x400000 + k % 2000:06X}"
        lat = 51.0 + (k % 997) / 1000
        lines.append(f"MSG,4,5,211,{icao},10057,2008/11/28,14:53:49.986,2008/11/28,14:58:51.153,,,408.3,146.4,,,64,,,,,")
        lines.append(
            f"MSG,3,5,211,{icao},10057,2008/11/28,14:53:50.594,2008/11/28,14:58:51.153,,37000,,,{lat:.5f},-1.02826,,,0,0,0,0"
        )
    return ("\n".join(lines) + "\n").encode()


def ais_stream(n: int) -> bytes:
    """Type 1 position reports of 2,000 vessels (pyais' encoder), one two-part type 5 in 50."""
    out = []
    for k in range(n):
        if k % 50 == 0:
            out.append(b"!AIVDM,2,1,4,A,55O0W7`00001L@gCWGA2uItLth@DqtL5@F22220j1h742t0Ht0000000,0*08\r\n")
            out.append(b"!AIVDM,2,2,4,A,000000000000000,2*20\r\n")
            continue
        report = {"type": 1, "mmsi": 200000000 + k % 2000, "lat": 37.0 + (k % 997) / 1000, "lon": -122.4,
                  "speed": 10.0, "course": 90.0, "second": k % 60}
        out.append(encode_dict(report, radio_channel="A")[0].encode() + b"\r\n")
    return b"".join(out)


def nmea_stream(n: int) -> bytes:
    """Alternating GGA and RMC sentences of one receiver."""
    out = []
    for k in range(n):
        minutes = 29.045 + (k % 1000) / 10000
        if k % 2:
            gga = f"GPGGA,1843{k % 60:02d}.07,19{minutes:06.3f},S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000"
            out.append(_nmea(gga))
        else:
            out.append(_nmea(f"GPRMC,0818{k % 60:02d},A,37{minutes:05.2f},S,14507.36,E,005.0,090.0,130998,011.3,E"))
    return b"".join(out)


def modes_stream(n: int) -> bytes:
    """The documented frames of pyModeS in turn: a CPR pair, identification, velocity, target state."""
    frames = [b"*8D40621D58C382D690C8AC2863A7;", b"*8D40621D58C386435CC412692AD6;", b"*8D4840D6202CC371C32CE0576098;",
              b"*8D485020994409940838175B284F;", b"*8DA05629EA21485CBF3F8CADAEEB;"]
    return b"\n".join(frames[k % len(frames)] for k in range(n)) + b"\n"


def aprs_stream(n: int) -> bytes:
    """aprslib's README packet, the APRS 1.0.1 examples and a Mic-E packet in turn."""
    packets = [
        b'M0XER-4>APRS64,TF3RPF,WIDE2*,qAR,TF3SUT-2:!/.(M4I^C,O `DXa/A=040849|#B>@"v90!+|',
        b"FROMCALL>TOCALL:!4903.50N/07201.75W-Test /A=001234",
        b"OH2RDK>APRS,TCPIP*,qAC,FOURTH:;LEADER   *092345z4903.50N/07201.75W>088/036",
        b'VE3XYZ>T2TP0W,WIDE1-1:`c52l#;>/]"4)}=',
    ]
    return b"\r\n".join(packets[k % len(packets)] for k in range(n)) + b"\r\n"


def cot_stream(n: int) -> bytes:
    """The ATAK PLI sample with a new uid and latitude each time."""
    sample = (servers.ROOT / "tests" / "data" / "samples" / "01_sa_pli_atak_civ_taky_fixture.xml").read_bytes().strip()
    sample = sample.replace(b"2021-02-27T20:38:39.771Z", b"2030-01-01T00:00:00.000Z")
    return b"".join(
        sample.replace(b"ANDROID-deadbeef", f"ANDROID-{k % 2000:08x}".encode()).replace(
            b'lat="1.234567"', f'lat="{1 + (k % 997) / 1000:.6f}"'.encode()
        )
        for k in range(n)
    )


def aircraft_json(n: int) -> bytes:
    """One readsb document of n aircraft with the documented fields."""
    aircraft = [
        {"hex": f"{0x400000 + k:06x}", "flight": f"TST{k:04d} ", "alt_baro": 37000, "alt_geom": 37525, "gs": 408.3,
         "track": 146.4, "baro_rate": 64, "category": "A3", "lat": 51.0 + (k % 997) / 1000, "lon": -1.02826,
         "nic": 8, "seen_pos": 0.5, "nac_p": 9, "messages": 300, "seen": 0.1, "rssi": -20.1}
        for k in range(n)
    ]
    return json.dumps({"now": 1714564800.0, "messages": 1, "aircraft": aircraft}).encode()


def geojson(n: int) -> bytes:
    """A FeatureCollection of n named points."""
    features = [
        {"type": "Feature", "id": k, "geometry": {"type": "Point", "coordinates": [24.0 + k / 1e5, 60.0]},
         "properties": {"name": f"P{k}"}}
        for k in range(n)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def stream_case(make: Callable[[], Any], data: bytes) -> Callable[[], int]:
    def run() -> int:
        dec = make()
        count = 0
        for start in range(0, len(data), READ):
            count += len(dec.receive(data[start : start + READ], NOW))
        assert dec.rejects.total == 0, dec.rejects.snapshot()
        return count

    return run


def document_case(make: Callable[[], Any], data: bytes) -> Callable[[], int]:
    def run() -> int:
        dec = make()
        count = len(dec.decode(data, NOW))
        assert dec.rejects.total == 0, dec.rejects.snapshot()
        return count

    return run


def best(run: Callable[[], int], rounds: int) -> tuple[float, int]:
    """The smallest CPU time of ``rounds`` runs, and the observations of the last."""
    times, produced = [], 0
    for _ in range(rounds):
        start = time.process_time()
        produced = run()
        times.append(time.process_time() - start)
    return min(times), produced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000, help="input units per decoder")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.lines
    cases = {
        "SBS-1 (lines)": (stream_case(lambda: SbsDecoder("b"), sbs_stream(n)), n),
        "aircraft.json (aircraft)": (document_case(lambda: AdsbJsonDecoder("b"), aircraft_json(n)), n),
        "Mode-S raw (frames)": (stream_case(lambda: ModesDecoder("b"), modes_stream(n)), n),
        "AIS (sentences)": (stream_case(lambda: AisDecoder("b"), ais_stream(n)), n + n // 50),
        "NMEA GPS (sentences)": (stream_case(lambda: NmeaDecoder("b"), nmea_stream(n)), n),
        "APRS-IS (lines)": (stream_case(lambda: AprsDecoder("b"), aprs_stream(n)), n),
        "CoT stream (events)": (stream_case(lambda: CotStreamDecoder("b"), cot_stream(n)), n),
        "GeoJSON (features)": (document_case(lambda: GeoJsonDecoder("b"), geojson(n)), n),
    }
    print("| decoder (unit) | units/s (CPU) | obs/s (CPU) | µs/unit |")
    print("|---|---:|---:|---:|")
    for name, (run, units) in cases.items():
        seconds, produced = best(run, args.rounds)
        print(f"| {name} | {units / seconds:,.0f} | {produced / seconds:,.0f} | {seconds / units * 1e6:.1f} |")


if __name__ == "__main__":
    main()
