"""The assembled plan: run-in choice, green light, stick, DZ check, warnings, assumptions."""

from __future__ import annotations

import pytest

from rallypoint.services.airdrop import plan
from rallypoint.services.airdrop.ballistics import KT
from tests.unit.services.airdrop.support import PI, base, build, simple


def test_every_plan_says_it_is_advisory_and_lists_its_assumptions() -> None:
    result = plan(build(base()))
    assert result.advisory.startswith("Advisory only")
    assert any("ISA" in a for a in result.assumptions)
    assert any("rectangle centred on the PI" in a for a in result.assumptions)
    off = plan(build(base(), options={"density_correction": False}))
    assert any("density correction off" in a for a in off.assumptions)


def test_free_run_in_follows_the_dz_axis_into_the_wind() -> None:
    # Axis 250/070, winds from about 250: fly 250 (into the wind), not 070.
    result = plan(build(base()))
    assert result.run_in_source == "chosen"
    assert result.run_in_deg == pytest.approx(250.0)
    tail = plan(build(base(), drop_zone__axis_deg=70.0))
    assert tail.run_in_deg == pytest.approx(250.0)
    reverse = base()
    for layer in reverse["winds"]:
        layer["from_deg"] = (layer["from_deg"] + 180.0) % 360.0
    assert plan(build(reverse)).run_in_deg == pytest.approx(70.0)
    given = plan(build(base(), aircraft__run_in_deg=200.0))
    assert (given.run_in_source, given.run_in_deg) == ("given", 200.0)


def test_green_light_spans_the_dz_along_the_run_in() -> None:
    result = plan(build(base()))
    light = result.green_light
    assert light is not None
    speed = 130.0 * KT
    assert light.duration_s == pytest.approx(700.0 / speed, rel=1e-6)
    assert light.opens_s == pytest.approx(-350.0 / speed, rel=1e-6)
    assert light.closes_s == pytest.approx(350.0 / speed, rel=1e-6)


def test_stick_spacing_is_ground_speed_times_exit_interval() -> None:
    result = plan(build(base()))
    assert result.stick.spacing_m == pytest.approx(0.5 * 130.0 * KT)
    assert result.stick.length_m == pytest.approx(3 * 0.5 * 130.0 * KT)
    long_stick = plan(build(base(), load__count=40, load__exit_interval_s=1.0))
    assert any("longer than the DZ" in w for w in long_stick.warnings)
    assert any("covers up to 8 containers" in w for w in long_stick.warnings)


def test_dz_size_check_against_the_sizing_rule() -> None:
    result = plan(build(base()))
    assert result.dz.fits and result.dz.rule == "container delivery"
    assert result.warnings == []
    small = plan(build(base(), drop_zone__width_m=400.0))
    assert not small.dz.fits
    assert any(w.startswith("DZ too small") for w in small.warnings)
    platforms = plan(build(base(), load__kind="platform", load__count=2))
    assert platforms.dz.required_length_m == pytest.approx(1400 * 0.9144)
    assert not platforms.dz.fits


def test_wind_over_the_limit_is_a_warning() -> None:
    strong = plan(build(simple(wind_kt=25.0)))
    assert any("surface wind 25 kt exceeds" in w for w in strong.warnings)
    data = base()
    data["winds"][1]["speed_kt"] = 30.0
    aloft = plan(build(data))
    assert any("wind aloft reaches 30 kt" in w for w in aloft.warnings)


def test_a_pi_outside_the_polygon_is_warned_and_has_no_green_light() -> None:
    lat, lon = PI
    far = [[lat + 0.02, lon], [lat + 0.02, lon + 0.01], [lat + 0.03, lon + 0.01], [lat + 0.03, lon]]
    result = plan(build(base(), drop_zone={"pi": list(PI), "polygon": far}))
    assert result.green_light is None
    assert any("outside the DZ outline" in w for w in result.warnings)


def test_polygon_dz_and_closed_rings() -> None:
    lat, lon = PI
    d = 0.003
    ring = [[lat - d, lon - d], [lat - d, lon + d], [lat + d, lon + d], [lat + d, lon - d]]
    open_ring = plan(build(base(), drop_zone={"pi": list(PI), "polygon": ring}))
    closed = plan(build(base(), drop_zone={"pi": list(PI), "polygon": [*ring, ring[0]]}))
    assert open_ring == closed
    assert len(open_ring.dz_polygon) == 4


def test_calm_air_is_assumed_without_winds() -> None:
    data = base()
    data["winds"] = []
    result = plan(build(data))
    assert result.drift_distance_m == 0.0
    assert any("calm" in a for a in result.assumptions)


def test_user_parachutes_extend_the_table_and_inline_values_win() -> None:
    data = base()
    data["parachutes"] = {"relief-chute": {"rod_sl_mps": 7.0, "vd_m": 60.0, "tfc_s": 3.0, "exit_time_s": 2.0,
                                           "dq_s": 1.5, "rated_weight_kg": 900.0}}
    data["load"]["parachute"] = "relief-chute"
    result = plan(build(data))
    assert result.rod_sl_mps == pytest.approx(7.0)
    assert result.forward_travel_m == pytest.approx(3.5 * 130.0 * KT)
    heavier = plan(build(data, load__weight_kg=1800.0, load__dq_s=0.5))
    assert heavier.rod_sl_mps == pytest.approx(7.0 * 2 ** 0.5)
    assert heavier.forward_travel_m == pytest.approx(2.5 * 130.0 * KT)
