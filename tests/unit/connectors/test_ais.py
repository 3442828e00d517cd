"""AIS decoder against published sentences (pyais README and docs, gpsd's AIVDM/AIVDO guide)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from pyais import NMEAMessage

from rallypoint.connectors.ais import CE_HIGH_ACCURACY_M, CE_LOW_ACCURACY_M, AisDecoder
from rallypoint.connectors.decoding import KNOT_MPS
from rallypoint.model.track import Domain, Identity, IdentityKind

NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
# pyais README: type 1, MMSI 366053209, 37.802118 N 122.341618 W, course 219.3, speed 0.0, second 59.
TYPE1 = b"!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0*5C"
# pyais docs (decode example): type 1, MMSI 367380120, speed 0.1 kn, course 245.2, RAIM on.
TYPE1_B = b"!AIVDM,1,1,,B,15NG6V0P01G?cFhE`R2IU?wn28R>,0*05"
# pyais README multipart: type 5, MMSI 368060190, "P/V_GOLDEN_GATE", call sign WDK4954, ship type 50.
TYPE5 = (
    b"!AIVDM,2,1,4,A,55O0W7`00001L@gCWGA2uItLth@DqtL5@F22220j1h742t0Ht0000000,0*08",
    b"!AIVDM,2,2,4,A,000000000000000,2*20",
)
# gpsd AIVDM guide: type 18 (class B), MMSI 367430530, 37.785035 N 122.26732 W.
TYPE18 = b"!AIVDM,1,1,,A,B5NJ;PP005l4ot5Isbl03wsUkP06,0*76"
# gpsd AIVDM guide: type 24 part A "PROGUY" and part B ship type 60, call sign TC6163, MMSI 271041815.
TYPE24A = b"!AIVDM,1,1,,A,H42O55i18tMET00000000000000,2*6D"
TYPE24B = b"!AIVDM,1,1,,A,H42O55lti4hhhilD3nink000?050,0*40"
# gpsd AIVDM guide: type 19, MMSI 367059850 "CAPT.J.RIMES", cargo (70), 8.7 kn, course 335.9.
TYPE19 = b"!AIVDM,1,1,,B,C5N3SRgPEnJGEBT>NhWAwwo862PaLELTBJ:V00000000S0D:R220,0*0B"


# gpsd test data: type 9 (SAR aircraft), MMSI 111232511, 303 m, 42 kn, 58.144 N 6.278843 W, course 154.5.
TYPE9 = b"!AIVDM,1,1,,B,91b55wi;hbOS@OdQAC062Ch2089h,0*30"


def _with_checksum(sentence: bytes) -> bytes:
    """A sentence with its checksum recomputed (for payloads we wrote; pyais verifies it below)."""
    body = sentence[1 : sentence.index(b"*")]
    value = 0
    for ch in body:
        value ^= ch
    fixed = sentence[: sentence.index(b"*") + 1] + f"{value:02X}".encode()
    assert NMEAMessage(fixed).is_valid
    return fixed


# Type 27 (long range) payload: MMSI 206914217, 4.84 N 137.023333 E, 57 kn, course 167.
TYPE27 = _with_checksum(b"!AIVDM,1,1,,A,KC5E2b@U19PFdLbL,0*00")
# Type 4 (base station report): not a vessel.
TYPE4 = _with_checksum(b"!AIVDM,1,1,,A,402R3WiuHkDJ0ES4;:KLBh00,0*00")


def _feed(dec: AisDecoder, *lines: bytes) -> list:
    return dec.receive(b"".join(line + b"\r\n" for line in lines), NOW)


def test_type1_position_report() -> None:
    dec = AisDecoder("ais")
    [obs] = _feed(dec, TYPE1)
    assert obs.identity == Identity(kind=IdentityKind.MMSI, value="366053209")
    assert (obs.lat, obs.lon) == pytest.approx((37.802118, -122.341618))
    assert obs.course_deg == pytest.approx(219.3)
    assert obs.speed_mps == 0.0
    assert obs.domain is Domain.SEA
    assert obs.ce_m == CE_LOW_ACCURACY_M and obs.quality == "accuracy=low"
    assert obs.source_time == datetime(2024, 5, 1, 11, 59, 59, tzinfo=UTC)  # second 59, previous minute
    assert obs.name is None and obs.category is None


def test_static_data_type5_merges_name_and_ship_type() -> None:
    dec = AisDecoder("ais")
    assert _feed(dec, *TYPE5) == []
    static = dec.vessel(368060190)
    assert static is not None
    assert (static.name, static.ship_type, static.callsign) == ("P/V_GOLDEN_GATE", 50, "WDK4954")
    # A position report of the same MMSI, built with pyais' encoder, carries the static data.
    from pyais import encode_dict

    [sentence] = encode_dict(
        {
            "type": 1,
            "mmsi": 368060190,
            "lat": 37.8,
            "lon": -122.4,
            "speed": 5.0,
            "course": 90.0,
            "accuracy": 1,
            "second": 10,
        },
        radio_channel="A",
    )
    [obs] = _feed(dec, sentence.encode())
    assert obs.name == "P/V_GOLDEN_GATE" and obs.category == "50"
    assert obs.speed_mps == pytest.approx(5.0 * KNOT_MPS)
    assert obs.ce_m == CE_HIGH_ACCURACY_M


def test_type24_parts_a_and_b_merge() -> None:
    dec = AisDecoder("ais")
    assert _feed(dec, TYPE24A, TYPE24B) == []
    static = dec.vessel(271041815)
    assert static is not None
    assert (static.name, static.ship_type, static.callsign) == ("PROGUY", 60, "TC6163")


def test_type18_class_b_and_type19_with_its_static_half() -> None:
    dec = AisDecoder("ais")
    [b18, b19] = _feed(dec, TYPE18, TYPE19)
    assert b18.identity is not None and b18.identity.value == "367430530"
    assert (b18.lat, b18.lon) == pytest.approx((37.785035, -122.26732))
    assert b19.identity is not None and b19.identity.value == "367059850"
    assert (b19.name, b19.category) == ("CAPT.J.RIMES", "70")
    assert b19.speed_mps == pytest.approx(8.7 * KNOT_MPS)
    assert b19.course_deg == pytest.approx(335.9)


def test_type27_long_range() -> None:
    dec = AisDecoder("ais")
    [obs] = _feed(dec, TYPE27)
    assert obs.identity is not None and obs.identity.value == "206914217"
    assert (obs.lat, obs.lon) == pytest.approx((4.84, 137.023333))
    assert obs.speed_mps == pytest.approx(57 * KNOT_MPS)
    assert obs.course_deg == 167.0
    assert obs.quality == "long_range"


def test_type9_sar_aircraft_is_in_the_air() -> None:
    dec = AisDecoder("ais")
    [obs] = _feed(dec, TYPE9)
    assert obs.identity is not None and obs.identity.value == "111232511"
    assert obs.domain is Domain.AIR and obs.alt_m == 303.0
    assert (obs.lat, obs.lon) == pytest.approx((58.144, -6.278843))
    assert obs.speed_mps == pytest.approx(42 * KNOT_MPS) and obs.course_deg == pytest.approx(154.5)


def test_second_part_without_the_first_is_an_incomplete_fragment() -> None:
    dec = AisDecoder("ais")
    assert _feed(dec, TYPE5[1], TYPE1)[0].identity is not None
    assert dec.rejects.snapshot() == {"incomplete_fragment": 1}


def test_first_part_that_never_completes_times_out_by_count() -> None:
    dec = AisDecoder("ais", fragment_window=5)
    _feed(dec, TYPE5[0])
    assert len(_feed(dec, *[TYPE1] * 10)) == 10
    _feed(dec, TYPE5[1])  # too late: its first part was dropped
    assert dec.rejects.snapshot() == {"incomplete_fragment": 2}
    assert dec.vessel(368060190) is None


def test_pending_buffer_is_bounded() -> None:
    dec = AisDecoder("ais", max_pending=4, fragment_window=1000)
    firsts = [TYPE5[0].replace(b",2,1,4,", f",2,1,{i},".encode()) for i in range(10)]
    _feed(dec, *[_with_checksum(f) for f in firsts])
    assert dec.rejects.snapshot() == {"incomplete_fragment": 6}
    assert len(dec._pending) == 4


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (TYPE1[:-2] + b"5D", "bad_checksum"),
        (b"!AIVDM,1,1,,A,,0*00", "bad_checksum"),
        (b"!AIVDM,garbage", "malformed"),
        (b"$GPGGA,1,2,3", "malformed"),
        (TYPE4, "unsupported"),
    ],
)
def test_bad_sentences_are_counted_and_the_rest_decodes(line: bytes, reason: str) -> None:
    dec = AisDecoder("ais")
    assert len(_feed(dec, line, TYPE1_B)) == 1
    assert dec.rejects.snapshot() == {reason: 1}


def test_position_not_available_is_impossible() -> None:
    from pyais import encode_dict

    dec = AisDecoder("ais")
    [sentence] = encode_dict({"type": 1, "mmsi": 1, "lat": 91.0, "lon": 181.0}, radio_channel="A")
    assert _feed(dec, sentence.encode()) == []
    assert dec.rejects.snapshot() == {"impossible_position": 1}
    assert math.isfinite(91.0)


def test_tag_block_is_skipped() -> None:
    dec = AisDecoder("ais")
    assert len(_feed(dec, b"\\s:rORBCOMM000,c:1426032000*4D\\" + TYPE1)) == 1


def test_static_memory_is_bounded() -> None:
    from pyais import encode_dict

    dec = AisDecoder("ais", max_vessels=3)
    lines = [
        encode_dict({"type": 24, "partno": 0, "mmsi": 100 + i, "shipname": f"S{i}"}, radio_channel="A")[0].encode()
        for i in range(5)
    ]
    _feed(dec, *lines)
    assert dec.vessel(100) is None and dec.vessel(104) is not None
