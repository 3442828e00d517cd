"""Every stream decoder against hostile input: a 10 MB line, random bytes, and mutated real lines.

Whatever comes in, a decoder never raises; what it skips is counted; the next good line decodes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from rallypoint.connectors.ais import AisDecoder
from rallypoint.connectors.aprs import AprsDecoder
from rallypoint.connectors.base import StreamDecoder
from rallypoint.connectors.cot_feed import CotStreamDecoder
from rallypoint.connectors.modes import ModesDecoder
from rallypoint.connectors.nmea import NmeaDecoder
from rallypoint.connectors.sbs import SbsDecoder

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PLI = (
    b'<event version="2.0" uid="ANDROID-deadbeef" type="a-f-G-U-C" how="m-g" time="2024-05-01T11:59:59Z" '
    b'start="2024-05-01T11:59:59Z" stale="2024-05-01T12:05:00Z"><point lat="1.234567" lon="-3.141592" '
    b'hae="-25.7" ce="9.9" le="9999999.0"/><detail><contact callsign="JENNY"/></detail></event>'
)
# (decoder factory, good input that yields exactly one observation, more real lines to mutate)
CASES: dict[str, tuple[Callable[[], StreamDecoder], bytes, list[bytes]]] = {
    "sbs": (
        lambda: SbsDecoder("s"),
        b"MSG,3,5,211,4CA2D6,10057,2008/11/28,14:53:50.594,2008/11/28,14:58:51.153,,37000,,,51.45735,-1.02826,,,0,0,0,0\n",
        [b"MSG,4,5,211,4CA2D6,10057,2008/11/28,14:53:49.986,2008/11/28,14:58:51.153,,,408.3,146.4,,,64,,,,,"],
    ),
    "modes": (
        lambda: ModesDecoder("m"),
        b"*8D40621D58C386435CC412692AD6;\n*8D40621D58C382D690C8AC2863A7;\n",
        [b"*8D4840D6202CC371C32CE0576098;", b"*8D485020994409940838175B284F;", b"*8DA05629EA21485CBF3F8CADAEEB;"],
    ),
    "ais": (
        lambda: AisDecoder("a"),
        b"!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0*5C\r\n",
        [
            b"!AIVDM,2,1,4,A,55O0W7`00001L@gCWGA2uItLth@DqtL5@F22220j1h742t0Ht0000000,0*08",
            b"!AIVDM,2,2,4,A,000000000000000,2*20",
            b"!AIVDM,1,1,,B,C5N3SRgPEnJGEBT>NhWAwwo862PaLELTBJ:V00000000S0D:R220,0*0B",
            b"!AIVDM,1,1,,A,H42O55lti4hhhilD3nink000?050,0*40",
        ],
    ),
    "nmea": (
        lambda: NmeaDecoder("g"),
        b"$GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E*62\r\n",
        [b"$GPGGA,184353.07,1929.045,S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000*6D"],
    ),
    "aprs": (
        lambda: AprsDecoder("p"),
        b"FROMCALL>TOCALL:!4903.50N/07201.75W-Test /A=001234\r\n",
        [
            b'M0XER-4>APRS64,TF3RPF,WIDE2*,qAR,TF3SUT-2:!/.(M4I^C,O `DXa/A=040849|#B>@"v90!+|',
            b"OH2RDK>APRS,TCPIP*,qAC,FOURTH:;LEADER   *092345z4903.50N/07201.75W>088/036",
            b'VE3XYZ>T2TP0W,WIDE1-1:`c52l#;>/]"4)}=',
        ],
    ),
    "cot": (lambda: CotStreamDecoder("c"), PLI, [PLI]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ten_megabyte_line_then_a_good_one(name: str) -> None:
    make, good, _ = CASES[name]
    dec = make()
    junk = b"A" * (10 * 1024 * 1024)
    for start in range(0, len(junk), 256 * 1024):
        assert dec.receive(junk[start : start + 256 * 1024], NOW) == []
    # End the junk line (a line source) and send the good input.
    observations = dec.receive(b"\n" + good, NOW)
    assert len(observations) == 1
    assert dec.rejects.total >= 1


@pytest.mark.parametrize("name", sorted(CASES))
def test_random_bytes_and_mutated_lines_never_raise(name: str) -> None:
    make, good, lines = CASES[name]
    rng = random.Random(9)
    dec = make()
    for _ in range(300):
        dec.receive(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200))) + b"\n", NOW)
    for _ in range(2000):
        line = bytearray(rng.choice(lines))
        for _ in range(rng.randrange(1, 4)):
            position = rng.randrange(len(line))
            line[position] = rng.choice(b"0123456789ABCDEF,*!$.-/:;<>\"'\x00\xff nN")
        dec.receive(bytes(line) + b"\n", NOW)
    assert dec.rejects.total > 0
    assert len(dec.receive(good, NOW)) >= 1
