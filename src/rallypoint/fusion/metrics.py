"""How far a set of estimates is from the truth: OSPA, and the local metric frame it is measured in.

OSPA (Optimal Sub-Pattern Assignment, Schuhmacher, Vo and Vo 2008) compares two finite point sets of
possibly different sizes. Distances are cut off at ``c`` (so one far-off or missing object costs at
most ``c``) and combined with order ``p``. With ``m <= n`` points::

    OSPA = ( (1/n) * ( min over assignments sum_i min(d_i, c)^p  +  c^p * (n - m) ) ) ^ (1/p)

It is 0 for identical sets, ``c`` when one set is empty and the other not, and splits into a
localisation part (the assigned distances) and a cardinality part (the unmatched points).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8

Points = npt.NDArray[np.float64]  # shape (n, 2): east and north metres in a LocalFrame


@dataclass(frozen=True)
class LocalFrame:
    """East/north metres around an origin (a sinusoidal projection: exact north-south, and east-west
    scaled by the point's own latitude, so distances within a few tens of kilometres are right to
    well under a metre per kilometre)."""

    lat0: float
    lon0: float

    def to_local(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> Points:
        """Latitudes and longitudes (degrees) to an ``(n, 2)`` array of east, north metres."""
        la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        dlon = (lo - self.lon0 + 180.0) % 360.0 - 180.0
        east = np.radians(dlon) * EARTH_RADIUS_M * np.cos(np.radians(la))
        north = np.radians(la - self.lat0) * EARTH_RADIUS_M
        return np.column_stack((east, north))

    def to_geodetic(self, east: float, north: float) -> tuple[float, float]:
        """East, north metres back to (latitude, longitude) degrees."""
        lat = self.lat0 + math.degrees(north / EARTH_RADIUS_M)
        lon = self.lon0 + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
        return lat, (lon + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class Ospa:
    """One OSPA value and its two parts (``localisation**p + cardinality**p == value**p``)."""

    value: float
    localisation: float
    cardinality: float


def ospa(estimates: npt.ArrayLike, truth: npt.ArrayLike, *, c: float, p: float = 2.0) -> Ospa:
    """OSPA distance between two point sets (rows are points, any dimension), cutoff ``c``, order ``p``."""
    if c <= 0 or p < 1:
        raise ValueError(f"OSPA needs cutoff c > 0 and order p >= 1 (got c={c}, p={p})")
    x = _as_points(estimates)
    y = _as_points(truth)
    m, n = len(x), len(y)
    if m == 0 and n == 0:
        return Ospa(0.0, 0.0, 0.0)
    if m > n:
        x, y, m, n = y, x, n, m
    if m == 0:
        return Ospa(c, 0.0, c)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"point sets of different dimension: {x.shape[1]} and {y.shape[1]}")
    distances = np.linalg.norm(x[:, None, :] - y[None, :, :], axis=2)
    cost = np.minimum(distances, c) ** p
    # Imported here: scipy.optimize costs every command-line call a third of a second at start-up.
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    assigned = float(cost[rows, cols].sum())
    unmatched = c**p * (n - m)
    return Ospa(
        value=((assigned + unmatched) / n) ** (1.0 / p),
        localisation=(assigned / n) ** (1.0 / p),
        cardinality=(unmatched / n) ** (1.0 / p),
    )


def ospa_over_time(
    estimates: Sequence[npt.ArrayLike], truth: Sequence[npt.ArrayLike], *, c: float, p: float = 2.0
) -> list[Ospa]:
    """OSPA at each instant, ``estimates[k]`` against ``truth[k]`` (both in one local metric frame)."""
    if len(estimates) != len(truth):
        raise ValueError(f"{len(estimates)} estimate sets for {len(truth)} truth sets")
    return [ospa(e, t, c=c, p=p) for e, t in zip(estimates, truth, strict=True)]


def mean_ospa(values: Sequence[Ospa]) -> float:
    """The time average of an OSPA series (0 for an empty series)."""
    return float(np.mean([v.value for v in values])) if values else 0.0


def _as_points(points: npt.ArrayLike) -> Points:
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"a point set is a 2-D array (rows are points), got shape {arr.shape}")
    return arr
