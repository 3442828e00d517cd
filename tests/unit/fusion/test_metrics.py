"""OSPA against known values, and the local metric frame it is measured in."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rallypoint.fusion.metrics import LocalFrame, mean_ospa, ospa, ospa_over_time


def test_identical_sets_are_zero() -> None:
    points = [[0.0, 0.0], [100.0, 50.0], [-30.0, 7.0]]
    assert ospa(points, points, c=100.0, p=2).value == 0.0


def test_both_empty_is_zero_and_one_empty_is_the_cutoff() -> None:
    assert ospa([], [], c=50.0).value == 0.0
    assert ospa([], [[1.0, 2.0]], c=50.0).value == 50.0
    assert ospa([[1.0, 2.0], [3.0, 4.0]], [], c=50.0).value == 50.0


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("n", [2, 4, 10])
def test_one_missing_costs_c_times_one_over_n_to_the_one_over_p(n: int, p: float) -> None:
    truth = np.array([[i * 1_000.0, 0.0] for i in range(n)])
    result = ospa(truth[:-1], truth, c=200.0, p=p)
    assert result.value == pytest.approx(200.0 * (1.0 / n) ** (1.0 / p))
    assert result.localisation == pytest.approx(0.0)
    assert result.cardinality == pytest.approx(result.value)


def test_single_pair_is_its_distance_below_the_cutoff() -> None:
    assert ospa([[0.0, 0.0]], [[3.0, 4.0]], c=10.0, p=1).value == pytest.approx(5.0)
    assert ospa([[0.0, 0.0]], [[3.0, 4.0]], c=10.0, p=2).value == pytest.approx(5.0)


def test_the_cutoff_caps_every_distance() -> None:
    far = ospa([[0.0, 0.0], [1.0, 0.0]], [[1e6, 0.0], [2e6, 0.0]], c=75.0, p=2)
    assert far.value == pytest.approx(75.0)
    # One good pair (distance 6) and one far-off pair (capped at c=10): ((36 + 100) / 2) ^ (1/2).
    mixed = ospa([[0.0, 0.0], [0.0, 1e5]], [[6.0, 0.0], [0.0, 0.0 + 5e5]], c=10.0, p=2)
    assert mixed.value == pytest.approx(math.sqrt((36.0 + 100.0) / 2.0))


def test_assignment_is_optimal_not_greedy() -> None:
    # Greedy nearest-first would pair (0,0)-(1,0) and leave (2,0)-(-1.1,0) at 3.1; optimal pairs cross.
    estimates = [[0.0, 0.0], [2.0, 0.0]]
    truth = [[1.0, 0.0], [-1.1, 0.0]]
    assert ospa(estimates, truth, c=100.0, p=1).value == pytest.approx((1.1 + 1.0) / 2.0)


def test_symmetric_and_parts_add_up() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 50, (5, 2)), rng.normal(0, 50, (8, 2))
    one, other = ospa(a, b, c=60.0, p=2), ospa(b, a, c=60.0, p=2)
    assert one.value == pytest.approx(other.value)
    assert one.localisation**2 + one.cardinality**2 == pytest.approx(one.value**2)
    assert 0.0 <= one.value <= 60.0


def test_bad_parameters_are_refused_in_words() -> None:
    with pytest.raises(ValueError, match="cutoff"):
        ospa([[0.0, 0.0]], [[1.0, 1.0]], c=0.0)
    with pytest.raises(ValueError, match="order"):
        ospa([[0.0, 0.0]], [[1.0, 1.0]], c=1.0, p=0.5)
    with pytest.raises(ValueError, match="truth sets"):
        ospa_over_time([[[0.0, 0.0]]], [], c=1.0)


def test_over_time_and_its_mean() -> None:
    series = ospa_over_time([[[0.0, 0.0]], [], [[0.0, 0.0]]], [[[0.0, 0.0]], [[5.0, 5.0]], [[3.0, 4.0]]], c=10.0)
    assert [s.value for s in series] == pytest.approx([0.0, 10.0, 5.0])
    assert mean_ospa(series) == pytest.approx(5.0)
    assert mean_ospa([]) == 0.0


def test_local_frame_round_trip_and_scale() -> None:
    frame = LocalFrame(54.4, 10.6)
    lat, lon = frame.to_geodetic(12_000.0, -8_000.0)
    back = frame.to_local(lat, lon)
    assert back[0] == pytest.approx([12_000.0, -8_000.0], abs=1e-6)
    # One arc-minute of latitude is one nautical mile (1852 m) to within the sphere's approximation.
    north = frame.to_local(54.4 + 1 / 60, 10.6)[0, 1]
    assert north == pytest.approx(1852.0, rel=0.005)
    assert frame.to_local([], []).shape == (0, 2)
