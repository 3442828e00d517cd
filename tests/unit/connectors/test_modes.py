"""Raw Mode-S decoder against the example frames of pyModeS' documentation ("The 1090 MHz Riddle")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rallypoint.connectors.adsb_quality import nacp_ce_m
from rallypoint.connectors.decoding import FOOT_M, KNOT_MPS
from rallypoint.connectors.modes import ModesDecoder
from rallypoint.model.track import Domain, Identity, IdentityKind

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
# Airborne position pair of 40621D at 38000 ft: even and odd frames; with the even frame the newer,
# the globally decoded position is 52.2572 N 3.91937 E.
EVEN = b"8D40621D58C382D690C8AC2863A7"
ODD = b"8D40621D58C386435CC412692AD6"
# Identification of 4840D6: callsign KLM1023.
IDENT = b"8D4840D6202CC371C32CE0576098"
# Airborne velocity (subtype 1) of 485020: 159 kt, track 182.88, -832 ft/min.
VELOCITY = b"8D485020994409940838175B284F"
# Airborne velocity (subtype 3, air speed) of A05F21: 375 kt TAS, heading 243.98, -2304 ft/min.
AIRSPEED = b"8DA05F219B06B6AF189400CBC33F"
# Target state and status of A05629: NACp 9.
TARGET_STATE = b"8DA05629EA21485CBF3F8CADAEEB"
# Surface position of 484175 (17 kt, track 92.8): against the reference 51.990 N 4.375 E it resolves to
# 52.320561 N 4.735735 E (the documented pair decode gives 52.32061 N 4.73473 E, within 100 m).
SURFACE = b"8C4841753A9A153237AEF0F275BE"


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_cpr_pair_then_local_decode() -> None:
    dec = ModesDecoder("mode-s")
    assert dec.receive(b"*" + ODD + b";\n", _at(0)) == []  # half a pair: nothing yet
    [obs] = dec.receive(b"*" + EVEN + b";\n", _at(2))
    assert obs.identity == Identity(kind=IdentityKind.ICAO, value="40621d")
    assert (obs.lat, obs.lon) == pytest.approx((52.2572, 3.91937), abs=1e-4)
    assert obs.alt_m == pytest.approx(38000 * FOOT_M)
    assert obs.domain is Domain.AIR
    # Later single frames decode locally against that position.
    [again] = dec.receive(ODD + b"\n", _at(4))
    assert (again.lat, again.lon) == pytest.approx((52.26578, 3.93891), abs=1e-4)
    assert dec.rejects.total == 0


def test_pair_older_than_the_window_does_not_decode() -> None:
    dec = ModesDecoder("mode-s")
    assert dec.receive(ODD + b"\n", _at(0)) == []
    assert dec.receive(EVEN + b"\n", _at(11)) == []
    assert len(dec.receive(ODD + b"\n", _at(12))) == 1  # a fresh pair


def test_local_reference_expires() -> None:
    dec = ModesDecoder("mode-s", local_window_s=30)
    dec.receive(ODD + b"\n" + EVEN + b"\n", _at(0))
    assert dec.receive(EVEN + b"\n", _at(60)) == []  # last position too old, the odd frame too


def test_identification_velocity_and_nacp_enrich_positions() -> None:
    dec = ModesDecoder("mode-s")
    assert dec.receive(IDENT + b"\n" + VELOCITY + b"\n" + AIRSPEED + b"\n" + TARGET_STATE + b"\n", T0) == []
    assert dec.rejects.total == 0
    ident = dec._aircraft.get("4840d6")
    assert ident is not None and ident.callsign == "KLM1023"
    vel = dec._aircraft.get("485020")
    assert vel is not None and vel.speed_kt == 159 and vel.track == pytest.approx(182.88, abs=0.01)
    assert vel.vrate_fpm == -832
    air = dec._aircraft.get("a05f21")
    assert air is not None and air.speed_kt is None and air.vrate_fpm == -2304
    ts = dec._aircraft.get("a05629")
    assert ts is not None and ts.nacp == 9


def test_nacp_and_velocity_reach_the_observation() -> None:
    dec = ModesDecoder("mode-s")
    dec.receive(ODD + b"\n", _at(0))
    state = dec._aircraft.get("40621d")
    assert state is not None
    state.nacp, state.speed_kt, state.track, state.callsign = 9, 450.0, 90.0, "TEST1"
    [obs] = dec.receive(EVEN + b"\n", _at(1))
    assert obs.ce_m == nacp_ce_m(9) and obs.quality == "nacp=9"
    assert obs.speed_mps == pytest.approx(450 * KNOT_MPS) and obs.course_deg == 90.0 and obs.name == "TEST1"


def test_surface_position_needs_the_receiver() -> None:
    without = ModesDecoder("mode-s")
    assert without.receive(SURFACE + b"\n", T0) == []
    assert without.rejects.snapshot() == {"unsupported": 1}
    with_ref = ModesDecoder("mode-s", receiver=(51.990, 4.375))
    [obs] = with_ref.receive(SURFACE + b"\n", T0)
    assert (obs.lat, obs.lon) == pytest.approx((52.320561, 4.735735), abs=1e-5)
    assert obs.speed_mps == pytest.approx(17 * KNOT_MPS) and obs.course_deg == pytest.approx(92.8125)


def test_timestamped_frames() -> None:
    dec = ModesDecoder("mode-s")
    assert dec.receive(b"@0123456789AB" + ODD + b";\n@0123456789AC" + EVEN + b";\n", T0)[0].lat == pytest.approx(
        52.2572, abs=1e-4
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"*8D4840D6202CC371C32CE0576099;", "bad_checksum"),  # last digit changed
        (b"*8D4840D6202CC371C32CE05760;", "malformed"),  # wrong length
        (b"*8D4840D6202CC371C32CE057609G;", "malformed"),
        (b"*8D4840D6202CC371C32CE0576098", "malformed"),  # no terminator
        (b"*5D484FDEA248F5;", "unsupported"),  # DF11 all-call reply
        (b"hello", "malformed"),
    ],
)
def test_bad_frames_are_counted(line: bytes, reason: str) -> None:
    dec = ModesDecoder("mode-s")
    assert len(dec.receive(line + b"\n" + ODD + b"\n" + EVEN + b"\n", T0)) == 1
    assert dec.rejects.snapshot() == {reason: 1}


def test_aircraft_state_is_bounded() -> None:
    dec = ModesDecoder("mode-s", max_aircraft=2)
    dec.receive(IDENT + b"\n" + VELOCITY + b"\n" + TARGET_STATE + b"\n", T0)
    assert dec._aircraft.get("4840d6") is None and len(dec._aircraft) == 2
