"""Layered integration against closed forms, density, linearity, zero wind and geodesy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pyproj import Geod

from rallypoint.services.airdrop import plan
from rallypoint.services.airdrop.ballistics import density, fall, rate_of_descent
from rallypoint.services.airdrop.geometry import flat_offset, offset
from tests.unit.services.airdrop.support import KT, PI, build, simple

GEOD = Geod(ellps="WGS84")
C, N = 2.25577e-5, 4.25588


def isa_descent_time(rod_sl: float, elevation: float, height: float) -> float:
    """Closed form of the integral of dh / (ROD_sl sqrt(rho0/rho(h))) over the ISA troposphere."""
    m = N / 2 + 1
    return float(((1 - C * elevation) ** m - (1 - C * (elevation + height)) ** m) / (C * m * rod_sl))


def test_one_layer_integration_equals_the_closed_form() -> None:
    rod, vd, tfc = 8.0, 110.0, 5.6
    result = plan(build(simple(altitude_m=300.0, rod_mps=rod, wind_kt=15.0, vd_m=vd, tfc_s=tfc)))
    expected_tof = tfc + (300.0 - vd) / rod
    assert result.time_of_fall_s == pytest.approx(expected_tof, rel=1e-9)
    assert result.drift_distance_m == pytest.approx(15.0 * KT * expected_tof, rel=1e-9)
    assert result.stabilization_altitude_m == pytest.approx(190.0)


@pytest.mark.parametrize("elevation", [0.0, 1500.0, 3500.0])
def test_density_corrected_descent_matches_the_isa_closed_form(elevation: float) -> None:
    one = np.array([0.0]), np.array([400.0])
    result = fall(altitude_agl_m=400.0, elevation_m=elevation, rod_sl_mps=7.0, vd_m=0.0, tfc_s=0.0,
                  bottoms=one[0], tops=one[1], density_correction=True)
    assert result.time_of_fall_s == pytest.approx(isa_descent_time(7.0, elevation, 400.0), rel=1e-6)


def test_splitting_a_layer_changes_nothing() -> None:
    kwargs: dict[str, Any] = {"altitude_agl_m": 500.0, "elevation_m": 800.0, "rod_sl_mps": 8.0, "vd_m": 90.0,
                              "tfc_s": 4.0, "density_correction": True}
    whole = fall(bottoms=np.array([0.0]), tops=np.array([500.0]), **kwargs)
    split = fall(bottoms=np.array([0.0, 137.0, 333.0]), tops=np.array([137.0, 333.0, 500.0]), **kwargs)
    wind = np.array([[3.0, -4.0]])
    assert split.time_of_fall_s == pytest.approx(whole.time_of_fall_s, rel=1e-9)
    assert split.drift(np.repeat(wind, 3, axis=0)) == pytest.approx(whole.drift(wind), rel=1e-9)


def test_layers_add_as_vectors_weighted_by_time_in_each() -> None:
    # Opposite winds of equal speed in two layers of equal descent time cancel exactly.
    data = simple(altitude_m=400.0, rod_mps=8.0)
    data["winds"] = [{"bottom_m": 0.0, "top_m": 200.0, "from_deg": 0.0, "speed_kt": 10.0},
                     {"bottom_m": 200.0, "top_m": 400.0, "from_deg": 180.0, "speed_kt": 10.0}]
    result = plan(build(data))
    assert result.drift_distance_m == pytest.approx(0.0, abs=1e-9)
    # A scalar average of speeds would have drifted 10 kt for the whole fall.
    assert result.time_of_fall_s == pytest.approx(50.0)


def test_zero_wind_puts_the_carp_forward_travel_short_of_the_pi() -> None:
    result = plan(build(simple(wind_kt=0.0, exit_time_s=4.2, dq_s=2.7)))
    assert result.drift_distance_m == 0.0
    assert result.forward_travel_m == pytest.approx((4.2 + 2.7) * 130.0 * KT)
    azimuth, _, distance = GEOD.inv(PI[1], PI[0], result.carp.lon, result.carp.lat)
    assert distance == pytest.approx(result.forward_travel_m, rel=1e-9)
    assert azimuth % 360 == pytest.approx(270.0, abs=1e-6)  # behind the PI on a 090 run-in


@pytest.mark.parametrize("density_on", [False, True])
def test_drift_is_linear_in_wind_speed(density_on: bool) -> None:
    drifts = [plan(build(base_data)).drift_m for base_data in
              (simple(wind_kt=speed, density=density_on, vd_m=60.0, tfc_s=3.0) for speed in (5.0, 10.0, 20.0))]
    for k, d in zip((2.0, 4.0), drifts[1:], strict=True):
        assert d.east == pytest.approx(k * drifts[0].east, rel=1e-12)
        assert d.north == pytest.approx(k * drifts[0].north, abs=1e-9)


def test_wind_from_the_west_drifts_the_load_east() -> None:
    result = plan(build(simple(from_deg=270.0)))
    assert result.drift_m.east > 0 and result.drift_m.north == pytest.approx(0.0, abs=1e-9)
    assert result.ballistic_wind.from_deg == pytest.approx(270.0)


def test_thin_air_aloft_means_faster_descent_and_a_shorter_fall() -> None:
    assert rate_of_descent(8.0, 3000.0, True) > rate_of_descent(8.0, 0.0, True) == pytest.approx(8.0)
    assert float(density(3000.0)) == pytest.approx(0.9093, abs=5e-4)  # ISA table value
    for elevation in (0.0, 2000.0):
        with_density = plan(build(simple(density=True), drop_zone__elevation_m=elevation))
        sea_level = plan(build(simple(density=False), drop_zone__elevation_m=elevation))
        assert with_density.time_of_fall_s < sea_level.time_of_fall_s
        assert with_density.drift_distance_m < sea_level.drift_distance_m
    high = plan(build(simple(density=True), drop_zone__elevation_m=2000.0))
    low = plan(build(simple(density=True), drop_zone__elevation_m=0.0))
    assert high.time_of_fall_s < low.time_of_fall_s


@pytest.mark.parametrize(("east", "north"), [(500.0, 0.0), (0.0, -1200.0), (-800.0, 650.0), (3000.0, 3000.0)])
@pytest.mark.parametrize("origin", [PI, (60.0, -150.0), (-35.0, 149.0)])
def test_geodesic_offsets_agree_with_flat_earth_at_drop_zone_distances(
        origin: tuple[float, float], east: float, north: float) -> None:
    geo = offset(origin, east, north)
    flat = flat_offset(origin, east, north)
    _, _, apart = GEOD.inv(geo[1], geo[0], flat[1], flat[0])
    assert apart < 0.001 * math.hypot(east, north)  # well under 1 %: under 0.1 % here
    _, _, distance = GEOD.inv(origin[1], origin[0], geo[1], geo[0])
    assert distance == pytest.approx(math.hypot(east, north), rel=1e-9)
