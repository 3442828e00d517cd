"""NMEA GPS decoder against published sentences (pynmea2's README GGA, the classic RMC example)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rallypoint.connectors.nmea import NmeaDecoder
from rallypoint.model.track import Domain, Identity, IdentityKind

NOW = datetime(1998, 9, 13, 8, 18, 40, tzinfo=UTC)
# pynmea2 README example.
GGA = b"$GPGGA,184353.07,1929.045,S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000*6D"
# The RMC example of the NMEA 0183 references (Melbourne, 13 Sep 1998).
RMC = b"$GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E*62"


def test_gga_position_altitude_and_hdop() -> None:
    dec = NmeaDecoder("boat-gps")
    when = datetime(2024, 5, 1, 18, 44, 0, tzinfo=UTC)
    [obs] = dec.receive(GGA + b"\r\n", when)
    assert obs.lat == pytest.approx(-19.484083, abs=1e-6)  # 19 deg 29.045' S
    assert obs.lon == pytest.approx(24.175100, abs=1e-6)  # 024 deg 10.506' E
    assert obs.alt_m == 100.0
    assert obs.ce_m == pytest.approx(2.6 * 5.0)
    assert obs.quality == "hdop=2.6"
    assert obs.identity == Identity(kind=IdentityKind.GPS, value="boat-gps")
    assert obs.domain is Domain.GROUND
    assert obs.source_time == datetime(2024, 5, 1, 18, 43, 53, 70000, tzinfo=UTC)
    assert dec.rejects.total == 0


def test_rmc_position_course_speed_and_date() -> None:
    dec = NmeaDecoder("gps")
    [obs] = dec.receive(RMC + b"\r\n", NOW)
    assert obs.lat == pytest.approx(-37.860833, abs=1e-6)
    assert obs.lon == pytest.approx(145.122667, abs=1e-6)
    assert obs.speed_mps == 0.0
    assert obs.course_deg == 0.0  # 360.0 true
    assert obs.source_time == datetime(1998, 9, 13, 8, 18, 36, tzinfo=UTC)


def test_gga_time_near_midnight_takes_the_previous_day() -> None:
    dec = NmeaDecoder("gps")
    [obs] = dec.receive(GGA + b"\n", datetime(2024, 5, 2, 0, 1, tzinfo=UTC))
    assert obs.source_time == datetime(2024, 5, 1, 18, 43, 53, 70000, tzinfo=UTC)


def test_partial_lines_are_kept_until_complete() -> None:
    dec = NmeaDecoder("gps")
    assert dec.receive(RMC[:20], NOW) == []
    assert len(dec.receive(RMC[20:] + b"\r\n" + GGA[:5], NOW)) == 1
    assert len(dec.receive(GGA[5:] + b"\n", NOW)) == 1


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (GGA[:-1] + b"E", "bad_checksum"),
        (GGA[:-3], "bad_checksum"),  # checksum required
        (b"$GPRMC,081836,V,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E*75", "no_fix"),
        (b"$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*74", "unsupported"),
        (b"hello", "malformed"),
        (b"$GPGGA,\xff\xfe*00", "malformed"),
        (b"$GPGGA,nonsense,x,y*00", "bad_checksum"),
    ],
)
def test_bad_sentences_are_counted(line: bytes, reason: str) -> None:
    dec = NmeaDecoder("gps")
    assert dec.receive(line + b"\r\n" + RMC + b"\r\n", NOW)[0].lat == pytest.approx(-37.860833, abs=1e-6)
    assert dec.rejects.snapshot() == {reason: 1}


def test_no_fix_zero_position_is_impossible() -> None:
    dec = NmeaDecoder("gps")
    body = "GPRMC,000000,A,0000.00,N,00000.00,E,0.0,0.0,010100,,"
    line = f"${body}*{_checksum(body):02X}".encode()
    assert dec.receive(line + b"\n", NOW) == []
    assert dec.rejects.snapshot() == {"impossible_position": 1}


def test_ten_megabyte_line_is_counted_once_and_the_stream_goes_on() -> None:
    dec = NmeaDecoder("gps")
    junk = b"$" + b"A" * (10 * 1024 * 1024)
    for i in range(0, len(junk), 65536):
        assert dec.receive(junk[i : i + 65536], NOW) == []
    assert len(dec.receive(b"\r\n" + RMC + b"\r\n", NOW)) == 1
    assert dec.rejects.snapshot() == {"too_long": 1}


def _checksum(body: str) -> int:
    value = 0
    for ch in body.encode():
        value ^= ch
    return value
