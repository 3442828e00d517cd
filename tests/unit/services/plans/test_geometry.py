"""The fast self-crossing test agrees with the plain all-pairs test on random and adversarial rings."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from rallypoint.services.plans_geometry import first_crossing


def touch(p: tuple[float, float], p2: tuple[float, float], q: tuple[float, float], q2: tuple[float, float]) -> bool:
    """Reference: do closed segments p-p2 and q-q2 share a point (orientation tests on exact inputs)?"""
    def orient(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def on(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    d1, d2, d3, d4 = orient(q, q2, p), orient(q, q2, p2), orient(p, p2, q), orient(p, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return ((d1 == 0 and on(q, q2, p)) or (d2 == 0 and on(q, q2, p2)) or (d3 == 0 and on(p, p2, q))
            or (d4 == 0 and on(p, p2, q2)))


def reference(ring: list[tuple[float, float]]) -> tuple[int, int] | None:
    n = len(ring)
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            if touch(ring[i], ring[(i + 1) % n], ring[j], ring[(j + 1) % n]):
                return i, j
    return None


def fast(ring: list[tuple[float, float]]) -> tuple[int, int] | None:
    pts = np.array(ring, dtype=float)
    return first_crossing(pts, np.roll(pts, -1, axis=0))


@pytest.mark.parametrize("seed", range(40))
def test_random_small_integer_rings_agree(seed: int) -> None:
    rng = random.Random(seed)
    ring = [(float(rng.randint(0, 6)), float(rng.randint(0, 6))) for _ in range(rng.randint(4, 12))]
    ring = [p for k, p in enumerate(ring) if p != ring[k - 1]]  # no vertex twice in a row
    assert fast(ring) == reference(ring)


def test_simple_and_crossing_rings() -> None:
    circle = [(math.cos(2 * math.pi * k / 500), math.sin(2 * math.pi * k / 500)) for k in range(500)]
    assert fast(circle) is None
    star = [(math.cos(4 * math.pi * k / 5), math.sin(4 * math.pi * k / 5)) for k in range(5)]
    assert fast(star) == reference(star)
    # Every edge's extent overlaps every other's: the worst case for the candidate search.
    comb = [(float(k % 2) * 100.0, float(k)) for k in range(400)] + [(50.0, -1.0)]
    assert fast(comb) == reference(comb)


def test_a_thousand_vertex_outline_is_simple() -> None:
    ring = [(math.cos(2 * math.pi * k / 1000), math.sin(2 * math.pi * k / 1000)) for k in range(1000)]
    assert fast(ring) is None
    ring[500] = (2.0, 0.0)  # one vertex pulled across the outline
    assert fast(ring) == reference(ring)
