"""Monte-Carlo footprint: convergence to the circular-normal figures, seeding, ellipse, P(inside)."""

from __future__ import annotations

import pytest

from rallypoint.services.airdrop import plan
from rallypoint.services.airdrop.ballistics import KT
from tests.unit.services.airdrop.support import build, simple


def wind_only(samples: int = 40_000, seed: int = 11, wind_sigma_kt: float = 4.0) -> dict[str, object]:
    return {"samples": samples, "seed": seed, "wind_sigma_kt": wind_sigma_kt, "release_sigma_s": 0.0,
            "rod_sigma_frac": 0.0, "nav_sigma_m": 0.0}


def test_cep_converges_to_1_1774_sigma_for_circular_normal_wind_error() -> None:
    data = simple(altitude_m=300.0, rod_mps=8.0)
    result = plan(build(data, dispersion=wind_only()))
    assert result.dispersion is not None
    # One layer, no deployment phase: the miss is the wind error times the whole time of fall.
    sigma_m = 4.0 * KT * result.time_of_fall_s
    assert result.dispersion.cep_m == pytest.approx(1.1774 * sigma_m, rel=0.02)
    assert result.dispersion.r95_m == pytest.approx(2.4477 * sigma_m, rel=0.03)
    ellipse = result.dispersion.ellipse
    assert ellipse.semi_major_m == pytest.approx(2.4477 * sigma_m, rel=0.03)
    assert ellipse.semi_minor_m == pytest.approx(2.4477 * sigma_m, rel=0.03)


def test_the_same_seed_gives_the_same_footprint_and_another_seed_another() -> None:
    data = simple()
    one = plan(build(data, dispersion={"samples": 500, "seed": 5}))
    two = plan(build(data, dispersion={"samples": 500, "seed": 5}))
    other = plan(build(data, dispersion={"samples": 500, "seed": 6}))
    assert one.dispersion == two.dispersion
    assert one.dispersion is not None and other.dispersion is not None
    assert one.dispersion.cep_m != other.dispersion.cep_m


def test_release_timing_error_stretches_the_footprint_along_the_run_in() -> None:
    data = simple(wind_kt=0.0)
    result = plan(build(data, dispersion={"samples": 20_000, "seed": 1, "wind_sigma_kt": 0.0,
                                           "release_sigma_s": 1.0, "rod_sigma_frac": 0.0}))
    assert result.dispersion is not None
    ellipse = result.dispersion.ellipse
    assert ellipse.orientation_deg == pytest.approx(90.0, abs=0.5)  # run-in 090
    assert ellipse.semi_minor_m == pytest.approx(0.0, abs=1e-6)
    assert ellipse.semi_major_m == pytest.approx(2.4477 * 130.0 * KT, rel=0.03)


def test_probability_inside_the_dz_follows_its_size() -> None:
    model = {"samples": 5000, "seed": 2, "wind_sigma_kt": 5.0}
    big = plan(build(simple(), dispersion=model))
    small = plan(build(simple(), dispersion=model, drop_zone__length_m=60.0, drop_zone__width_m=60.0))
    assert big.dispersion is not None and small.dispersion is not None
    assert big.dispersion.p_inside_dz == 1.0
    assert small.dispersion.p_inside_dz < 0.5
    assert any("beyond it must be clear" in w for w in small.warnings)
    assert len(small.dispersion.impacts) == 200
