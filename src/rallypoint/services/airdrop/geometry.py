"""Positions around the point of impact: geodesic offsets on WGS-84 and the DZ polygon in a local frame.

The local frame is azimuthal equidistant about the PI (east, north in metres): a vertex's local
coordinates are the geodesic distance and azimuth from the PI, and a local vector turns back into a
position by the geodesic direct problem. Inside-tests and chords are done in that frame, which at
DZ scale (a few kilometres) differs from the ellipsoid by far less than the inputs' accuracy.
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from pyproj import Geod

Array = npt.NDArray[np.float64]


@cache
def wgs84() -> Geod:
    """The WGS-84 ellipsoid's geodesics, made on first use: pyproj costs about 10 MB of memory at start."""
    from pyproj import Geod

    return Geod(ellps="WGS84")


def to_local(origin: tuple[float, float], lats: Array, lons: Array, geod: Geod | None = None) -> tuple[Array, Array]:
    """(east, north) metres of each (lat, lon) from ``origin`` (lat, lon), along the geodesic (WGS-84 by default)."""
    geod = geod or wgs84()
    lat0 = np.full(lats.shape, origin[0])
    lon0 = np.full(lats.shape, origin[1])
    az, _, dist = geod.inv(lon0, lat0, lons, lats)
    rad = np.radians(np.asarray(az, dtype=np.float64))
    dist = np.asarray(dist, dtype=np.float64)
    return dist * np.sin(rad), dist * np.cos(rad)


def from_local(origin: tuple[float, float], east: Array, north: Array, geod: Geod | None = None) -> tuple[Array, Array]:
    """(lats, lons) at local (east, north) metres from ``origin`` (the inverse of :func:`to_local`)."""
    geod = geod or wgs84()
    east = np.asarray(east, dtype=np.float64)
    north = np.asarray(north, dtype=np.float64)
    az = np.degrees(np.arctan2(east, north))
    dist = np.hypot(east, north)
    lons, lats, _ = geod.fwd(np.full(east.shape, origin[1]), np.full(east.shape, origin[0]), az, dist)
    return np.asarray(lats, dtype=np.float64), np.asarray(lons, dtype=np.float64)


def offset(origin: tuple[float, float], east: float, north: float, geod: Geod | None = None) -> tuple[float, float]:
    """The (lat, lon) reached from ``origin`` by a displacement of (east, north) metres."""
    lats, lons = from_local(origin, np.array([east]), np.array([north]), geod)
    return float(lats[0]), float(lons[0])


def unit(bearing_deg: float) -> Array:
    """Unit (east, north) vector of a bearing."""
    rad = math.radians(bearing_deg)
    return np.array([math.sin(rad), math.cos(rad)])


def bearing_of(east: float, north: float) -> float:
    """Bearing in [0, 360) of an (east, north) vector."""
    return math.degrees(math.atan2(east, north)) % 360.0


def rectangle(length_m: float, width_m: float, axis_deg: float) -> Array:
    """Local corners (V, 2) of a rectangle centred on the PI, its length along ``axis_deg``."""
    along = unit(axis_deg)
    across = np.array([along[1], -along[0]])
    half_l, half_w = length_m / 2.0, width_m / 2.0
    corners = [(-half_l, -half_w), (half_l, -half_w), (half_l, half_w), (-half_l, half_w)]
    return np.array([a * along + c * across for a, c in corners])


def area(poly: Array) -> float:
    """Unsigned shoelace area in m²."""
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def self_crossing(poly: Array) -> bool:
    """True when two non-adjacent edges of the closed polygon cross or touch."""
    n = len(poly)
    a = poly
    b = np.roll(poly, -1, axis=0)

    def orient(p: Array, q: Array, r: Array) -> Array:
        return np.asarray(
            (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])
        )

    # Edge i against edge j, every pair at once (n is capped, so n x n stays small).
    ai, bi = a[:, None, :], b[:, None, :]
    aj, bj = a[None, :, :], b[None, :, :]
    d1, d2 = orient(ai, bi, aj), orient(ai, bi, bj)
    d3, d4 = orient(aj, bj, ai), orient(aj, bj, bi)
    crossing = (d1 * d2 <= 0) & (d3 * d4 <= 0)
    # Collinear pairs pass the sign test without meeting: require overlapping bounding boxes too.
    lo = np.minimum(ai, bi)
    hi = np.maximum(ai, bi)
    lo_j = np.minimum(aj, bj)
    hi_j = np.maximum(aj, bj)
    boxes = np.all((lo <= hi_j) & (lo_j <= hi), axis=-1)
    idx = np.arange(n)
    gap = np.abs(idx[:, None] - idx[None, :])
    non_adjacent = (gap > 1) & (gap < n - 1)
    return bool(np.any(crossing & boxes & non_adjacent))


def inside(poly: Array, east: Array, north: Array) -> npt.NDArray[np.bool_]:
    """Even-odd test of points against the polygon, vectorised over points and edges."""
    x0, y0 = poly[:, 0][None, :], poly[:, 1][None, :]
    x1, y1 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    px, py = np.asarray(east)[:, None], np.asarray(north)[:, None]
    straddles = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    hits = straddles & (px < x_cross)
    return np.asarray(np.count_nonzero(hits, axis=1) % 2 == 1)


def chords(poly: Array, bearings_deg: Array) -> tuple[Array, Array]:
    """For lines through the PI along each bearing: how far back (<= 0) and ahead (>= 0) the DZ reaches.

    Returns (s_min, s_max) per bearing: the stretch of the line around the PI that stays inside
    the polygon. Both are 0 when the PI is outside.
    """
    rad = np.radians(bearings_deg)[:, None]
    ux, uy = np.sin(rad), np.cos(rad)
    x0, y0 = poly[:, 0][None, :], poly[:, 1][None, :]
    ex = np.roll(poly[:, 0], -1)[None, :] - x0
    ey = np.roll(poly[:, 1], -1)[None, :] - y0
    # Solve s*u = p0 + t*e for (s, t): the line meets edge k when 0 <= t <= 1.
    det = ux * (-ey) - uy * (-ex)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (x0 * (-ey) - y0 * (-ex)) / det
        t = (ux * y0 - uy * x0) / det
    valid = (np.abs(det) > 1e-12) & (t >= 0) & (t <= 1)
    ahead = np.where(valid & (s >= 0), s, np.inf).min(axis=1)
    back = np.where(valid & (s <= 0), s, -np.inf).max(axis=1)
    ok = np.isfinite(ahead) & np.isfinite(back) & inside(poly, np.zeros(1), np.zeros(1))[0]
    return np.where(ok, back, 0.0), np.where(ok, ahead, 0.0)


def extents(poly: Array, bearing_deg: float) -> tuple[float, float]:
    """Size of the polygon along and across a bearing (projections of its vertices)."""
    along = unit(bearing_deg)
    across = np.array([along[1], -along[0]])
    a = poly @ along
    c = poly @ across
    return float(a.max() - a.min()), float(c.max() - c.min())


def flat_offset(origin: tuple[float, float], east: float, north: float) -> tuple[float, float]:
    """Flat-earth (local tangent plane, WGS-84 radii of curvature) position: a cross-check only."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    lat = math.radians(origin[0])
    w = 1 - e2 * math.sin(lat) ** 2
    meridian = a * (1 - e2) / w**1.5
    normal = a / math.sqrt(w)
    return (origin[0] + math.degrees(north / meridian), origin[1] + math.degrees(east / (normal * math.cos(lat))))
