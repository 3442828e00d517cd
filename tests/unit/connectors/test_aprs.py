"""APRS decoder against aprslib's README packet and the APRS 1.0.1 specification's examples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rallypoint.connectors.aprs import AprsDecoder, login_line, login_verified, packet_time, passcode
from rallypoint.model.track import Domain, Identity, IdentityKind

NOW = datetime(2024, 5, 9, 23, 50, 0, tzinfo=UTC)
# aprslib README: compressed position of a balloon (symbol /O) with altitude and telemetry.
COMPRESSED = b'M0XER-4>APRS64,TF3RPF,WIDE2*,qAR,TF3SUT-2:!/.(M4I^C,O `DXa/A=040849|#B>@"v90!+|'
# APRS 1.0.1: uncompressed position without timestamp, altitude 1234 ft.
PLAIN = b"FROMCALL>TOCALL:!4903.50N/07201.75W-Test /A=001234"
# APRS 1.0.1: object LEADER with a DHM zulu timestamp, course 088, speed 036 knots.
OBJECT = b"OH2RDK>APRS,TCPIP*,qAC,FOURTH:;LEADER   *092345z4903.50N/07201.75W>088/036"
# A Mic-E packet (cross-checked by aprslib): 42.667833 N 71.420333 W, course 331, speed 0.
MIC_E = b'VE3XYZ>T2TP0W,WIDE1-1:`c52l#;>/]"4)}='


def test_compressed_position_from_the_readme() -> None:
    dec = AprsDecoder("aprs-is")
    [obs] = dec.receive(COMPRESSED + b"\r\n", NOW)
    assert obs.identity == Identity(kind=IdentityKind.APRS, value="M0XER-4")
    assert (obs.lat, obs.lon) == pytest.approx((64.11987367625208, -19.070654142799384))
    assert obs.alt_m == pytest.approx(12450.7752)
    assert obs.domain is Domain.AIR and obs.category == "/O"


def test_plain_position_and_ground_symbol() -> None:
    dec = AprsDecoder("aprs-is")
    [obs] = dec.receive(PLAIN + b"\n", NOW)
    assert (obs.lat, obs.lon) == pytest.approx((49.058333, -72.029167), abs=1e-6)
    assert obs.alt_m == pytest.approx(1234 * 0.3048)
    assert obs.domain is Domain.GROUND and obs.source_time is None and obs.ce_m is None


def test_object_is_named_by_itself_with_course_speed_and_time() -> None:
    dec = AprsDecoder("aprs-is")
    [obs] = dec.receive(OBJECT + b"\n", NOW)
    assert obs.identity == Identity(kind=IdentityKind.APRS, value="LEADER")
    assert obs.course_deg == 88.0
    assert obs.speed_mps == pytest.approx(36 * 1852 / 3600)
    assert obs.source_time == datetime(2024, 5, 9, 23, 45, tzinfo=UTC)


def test_mic_e() -> None:
    dec = AprsDecoder("aprs-is")
    [obs] = dec.receive(MIC_E + b"\n", NOW)
    assert (obs.lat, obs.lon) == pytest.approx((42.667833, -71.420333), abs=1e-6)
    assert obs.course_deg == 331.0 and obs.speed_mps == 0.0


def test_ambiguity_sets_the_error() -> None:
    dec = AprsDecoder("aprs-is")
    [obs] = dec.receive(b"N0CALL>APRS:=4903.  N/07201.  W-\n", NOW)
    assert obs.ce_m == 1852.0 and obs.quality == "ambiguity=2"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"N0CALL>APRS::N0CALL-1 :hello{1", "no_position"),
        (b"N0CALL>APRS:>status text", "no_position"),
        (b"A>B:!9903.50N/07201.75W-", "impossible_position"),
        (b"FROMCALL>TOCALL:!0000.00N/00000.00W-", "impossible_position"),
        (b"OH2RDK>APRS:;LEADER   _092345z4903.50N/07201.75W>088/036", "killed_object"),
        (b"not a packet", "malformed"),
        ("\u00c4>APRS:!4903.50N/07201.75W-".encode(), "malformed"),
    ],
)
def test_bad_or_positionless_packets_are_counted(line: bytes, reason: str) -> None:
    dec = AprsDecoder("aprs-is")
    assert len(dec.receive(line + b"\r\n" + PLAIN + b"\r\n", NOW)) == 1
    assert dec.rejects.snapshot() == {reason: 1}


def test_server_lines_are_skipped_uncounted_and_long_lines_refused() -> None:
    dec = AprsDecoder("aprs-is")
    data = b"# aprsc 2.1.14\r\n# logresp N0CALL unverified, server T2TEST\r\n" + b"X" * 5000 + b"\r\n" + PLAIN + b"\n"
    assert len(dec.receive(data, NOW)) == 1
    assert dec.rejects.snapshot() == {"too_long": 1}


def test_login_line_and_passcode() -> None:
    assert passcode("N0CALL") == 13023
    assert passcode("n0call-9") == 13023
    assert login_line("N0CALL-9", software="rallypoint", version="1.0", server_filter="r/60.17/24.94/50") == (
        b"user N0CALL-9 pass 13023 vers rallypoint 1.0 filter r/60.17/24.94/50\r\n"
    )
    assert login_line("N0CALL", software="rp", version="1", code=-1) == b"user N0CALL pass -1 vers rp 1\r\n"
    with pytest.raises(ValueError, match="line breaks"):
        login_line("N0CALL", software="rp", version="1", server_filter="r/1/2/3\r\nuser EVIL")
    assert login_verified(b"# logresp N0CALL verified, server T2TEST") is True
    assert login_verified(b"# logresp N0CALL unverified, server T2TEST") is False
    assert login_verified(b"# aprsc 2.1.14") is None


def test_packet_time_forms() -> None:
    assert packet_time("092345z", NOW) == datetime(2024, 5, 9, 23, 45, tzinfo=UTC)
    assert packet_time("302359z", datetime(2024, 5, 1, 0, 5, tzinfo=UTC)) == datetime(2024, 4, 30, 23, 59, tzinfo=UTC)
    assert packet_time("234517h", NOW) == datetime(2024, 5, 9, 23, 45, 17, tzinfo=UTC)
    assert packet_time("092345/", NOW) is None
    assert packet_time("992345z", NOW) is None
