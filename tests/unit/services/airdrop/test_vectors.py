"""The reference test vectors (A-E), each through the public functions."""

from __future__ import annotations

import numpy as np
import pytest

from rallypoint.services.airdrop import plan
from rallypoint.services.airdrop.ballistics import implied_k
from rallypoint.services.airdrop.dispersion import summarize
from rallypoint.services.airdrop.geometry import rectangle
from rallypoint.services.airdrop.sizing import required_size
from tests.unit.services.airdrop.support import FT, build, simple


def test_a_quick_cross_check_with_a_given_k() -> None:
    # D = K x A x V with K = 3.0, A = 8 (800 ft), V = 10 kt -> 240 m.
    result = plan(build(simple(altitude_m=800 * FT, wind_kt=10.0), options__k_factor=3.0))
    assert result.cross_check.a_hundreds_ft == pytest.approx(8.0)
    assert result.cross_check.v_kt == pytest.approx(10.0)
    assert result.cross_check.d_m == pytest.approx(240.0)
    assert result.cross_check.k_source == "given"


def test_b_uniform_wind_without_density_or_deployment() -> None:
    # 12 kt, 600 ft, ROD 28.5 ft/s, no density correction, no TFC -> TOF 21.05 s, drift 130.0 m, K 1.805.
    result = plan(build(simple()))
    assert result.time_of_fall_s == pytest.approx(21.05, abs=0.005)
    assert result.drift_distance_m == pytest.approx(130.0, abs=0.05)
    assert result.cross_check.k == pytest.approx(1.805, abs=0.0005)
    # With K derived from the same ROD, the quick form and the integration agree exactly.
    assert result.cross_check.d_m == pytest.approx(result.drift_distance_m)


def test_c_circular_normal_cep_and_r95() -> None:
    sigma = 50.0
    offsets = np.random.default_rng(3).normal(0.0, sigma, size=(400_000, 2))
    footprint = summarize(offsets, rectangle(1e5, 1e5, 0.0))
    assert footprint.cep_m == pytest.approx(58.87, rel=0.01)
    assert footprint.r95_m == pytest.approx(122.39, rel=0.01)
    # The closed forms the vector comes from.
    assert sigma * np.sqrt(2 * np.log(2)) == pytest.approx(58.87, abs=0.005)
    assert sigma * np.sqrt(-2 * np.log(0.05)) == pytest.approx(122.39, abs=0.005)


def test_d_container_dz_for_four_containers_at_800_ft() -> None:
    need = required_size("container", 4, 800 * FT)
    assert need.width_m == pytest.approx(438.9, abs=0.05)
    assert need.length_m == pytest.approx(576.1, abs=0.05)


@pytest.mark.parametrize(("rod_ft_s", "k"), [(19.0, 2.71), (28.5, 1.80), (80.0, 0.64)])
def test_e_implied_k_from_the_descent_rate(rod_ft_s: float, k: float) -> None:
    assert implied_k(rod_ft_s * FT) == pytest.approx(k, abs=0.0051)  # table rounds to 2 places
    assert implied_k(rod_ft_s * FT) == pytest.approx(15.68 / (rod_ft_s * FT), rel=1e-3)
