"""SBS-1/BaseStation decoder against the published port 30003 samples (the BaseStation socket data
description, "Barebones" article by woodair.net)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rallypoint.connectors.decoding import FOOT_M, KNOT_MPS
from rallypoint.connectors.sbs import SbsDecoder
from rallypoint.model.track import Domain, Identity, IdentityKind

NOW = datetime(2008, 11, 28, 14, 58, 51, tzinfo=UTC)
SAMPLE = b"""STA,,5,179,400AE7,10103,2008/11/28,14:58:51.153,2008/11/28,14:58:51.153,RM
MSG,4,5,211,4CA2D6,10057,2008/11/28,14:53:49.986,2008/11/28,14:58:51.153,,,408.3,146.4,,,64,,,,,
MSG,8,5,211,4CA2D6,10057,2008/11/28,14:53:50.391,2008/11/28,14:58:51.153,,,,,,,,,,,,0
MSG,3,5,211,4CA2D6,10057,2008/11/28,14:53:50.594,2008/11/28,14:58:51.153,,37000,,,51.45735,-1.02826,,,0,0,0,0
MSG,3,5,276,4010E9,10088,2008/11/28,14:53:49.986,2008/11/28,14:58:51.153,,28000,,,53.02551,-2.91389,,,0,0,0,0
MSG,4,5,276,4010E9,10088,2008/11/28,14:53:50.188,2008/11/28,14:58:51.153,,,459.4,20.2,,,64,,,,,
MSG,3,5,276,4010E9,10088,2008/11/28,14:53:50.594,2008/11/28,14:58:51.153,,28000,,,53.02677,-2.91310,,,0,0,0,0
"""
# The same description's identification example (transmission type 1).
MSG1 = b"MSG,1,145,256,7404F2,11267,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,RJA1118,,,,,,,,,,,\n"


def test_positions_merge_velocity_and_altitude_per_icao() -> None:
    dec = SbsDecoder("adsb")
    first, second, third = dec.receive(SAMPLE, NOW)
    assert first.identity == Identity(kind=IdentityKind.ICAO, value="4ca2d6")
    assert (first.lat, first.lon) == (51.45735, -1.02826)
    assert first.alt_m == pytest.approx(37000 * FOOT_M)
    assert first.speed_mps == pytest.approx(408.3 * KNOT_MPS)
    assert first.course_deg == pytest.approx(146.4)
    assert first.climb_mps == pytest.approx(64 * FOOT_M / 60)
    assert first.domain is Domain.AIR and first.source_time is None
    # 4010E9's first position came before its velocity line; the second carries it.
    assert second.identity is not None and second.identity.value == "4010e9"
    assert second.speed_mps is None
    assert (third.lat, third.lon) == (53.02677, -2.91310)
    assert third.speed_mps == pytest.approx(459.4 * KNOT_MPS) and third.course_deg == pytest.approx(20.2)
    assert dec.rejects.snapshot() == {"unsupported": 1}  # the STA line


def test_callsign_from_msg1_names_later_positions() -> None:
    dec = SbsDecoder("adsb")
    assert dec.receive(MSG1, NOW) == []
    state = dec.aircraft("7404f2")
    assert state is not None and state.callsign == "RJA1118"
    line = b"MSG,3,145,256,7404F2,11267,2008/11/28,23:48:19.0,2008/11/28,23:53:20.0,,12000,,,31.5,35.9,,,0,0,0,0\n"
    [obs] = dec.receive(line, NOW)
    assert obs.name == "RJA1118"


def test_tracked_aircraft_are_capped() -> None:
    dec = SbsDecoder("adsb", max_aircraft=2)
    for icao in ("AAAAA1", "AAAAA2", "AAAAA3"):
        dec.receive(MSG1.replace(b"7404F2", icao.encode()), NOW)
    assert dec.aircraft("aaaaa1") is None and dec.aircraft("aaaaa3") is not None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"MSG,3,5,211,4CA2D6,10057,,,,,,37000,,,95.0,-1.0,,,0,0,0,0", "impossible_position"),
        (b"MSG,3,5,211,4CA2D6,10057,,,,,,37000,,,nan,-1.0,,,0,0,0,0", "impossible_position"),
        (b"MSG,3,5,211,4CA2D6,10057,,,,,,37000,,,,,,,0,0,0,0", "malformed"),
        (b"MSG,3,5,211,4CA2D6,10057,,,,,,37000,,,0,0,,,0,0,0,0", "impossible_position"),
        (b"MSG,3,5,211,4CA2D6,10057,,,,,,high,,,51.0,-1.0,,,0,0,0,0", "malformed"),
        (b"MSG,3,5,211,XYZ123,10057,,,,,,37000,,,51.0,-1.0,,,0,0,0,0", "malformed"),
        (b"MSG,3,5,211,~4CA2D,10057,,,,,,37000,,,51.0,-1.0,,,0,0,0,0", "unsupported"),
        (b"MSG,9,5,211,4CA2D6,10057,,,,,,,,,,,,,,,,", "malformed"),
        (b"MSG,3,5,211,4CA2D6", "malformed"),
        (b"\xff\xfe,MSG", "malformed"),
    ],
)
def test_bad_lines_are_counted_and_skipped(line: bytes, reason: str) -> None:
    dec = SbsDecoder("adsb")
    observations = dec.receive(line + b"\n" + SAMPLE, NOW)
    assert len(observations) == 3
    assert dec.rejects.snapshot() == {reason: 1, "unsupported": 1 + (reason == "unsupported")}


def test_ten_megabyte_line() -> None:
    dec = SbsDecoder("adsb")
    assert dec.receive(b"MSG," * (10 * 1024 * 1024 // 4), NOW) == []
    assert len(dec.receive(b"\n" + SAMPLE, NOW)) == 3
    assert dec.rejects.snapshot()["too_long"] == 1
