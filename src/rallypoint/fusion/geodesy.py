"""A local east/north tangent plane around a track's own position, on the WGS84 ellipsoid.

Each track keeps its latest estimate as latitude/longitude and does its filtering in metres in the
tangent plane at that point (its *anchor*); after every update the anchor moves to the new estimate,
so the plane is only ever used for the distance an object covers between two reports.

The projection is equirectangular with the ellipsoid's meridional (M) and prime-vertical (N) radii
of curvature taken at the mid latitude of the two points. Against the WGS84 geodesic its distance
error is below 0.1 m up to 20 km from the anchor at latitudes up to 70 degrees (checked with
pyproj's ``Geod`` in ``tests/unit/fusion/test_geodesy.py``); it is not meant for the polar caps
(latitudes are clamped to +-89.9 degrees for the east scale). The east/north axes of successive
anchors differ by the meridian convergence (``dlon * sin(lat)``), which the tracker ignores: a
constant velocity in the plane follows a rhumb line, as ships and most aircraft legs do.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Index = npt.NDArray[np.intp]
Mask = npt.NDArray[np.bool_]

_A = 6_378_137.0  # WGS84 semi-major axis, metres
_F = 1.0 / 298.257223563
_E2 = _F * (2.0 - _F)
_RAD = np.pi / 180.0
_MAX_LAT = 89.9


def _radii(lat_deg: Array) -> tuple[Array, Array]:
    """Meridional and prime-vertical radii of curvature (metres) at ``lat_deg``."""
    s = np.sin(lat_deg * _RAD)
    w = 1.0 - _E2 * s * s
    n = _A / np.sqrt(w)
    m = _A * (1.0 - _E2) / (w * np.sqrt(w))
    return m, n


def _east_scale(lat_deg: Array) -> tuple[Array, Array]:
    """Metres per degree of latitude and of longitude at ``lat_deg``."""
    m, n = _radii(lat_deg)
    clamped = np.clip(lat_deg, -_MAX_LAT, _MAX_LAT)
    return m * _RAD, n * np.cos(clamped * _RAD) * _RAD


def _wrap_lon(dlon: Array) -> Array:
    return (dlon + 180.0) % 360.0 - 180.0


def to_enu(lat0: Array, lon0: Array, lat: Array, lon: Array) -> tuple[Array, Array]:
    """East and north metres of (``lat``, ``lon``) in the tangent plane anchored at (``lat0``, ``lon0``)."""
    mid = 0.5 * (lat0 + lat)
    k_n, k_e = _east_scale(mid)
    return _wrap_lon(lon - lon0) * k_e, (lat - lat0) * k_n


def from_enu(lat0: Array, lon0: Array, east: Array, north: Array) -> tuple[Array, Array]:
    """Latitude and longitude of the point ``east``/``north`` metres from the anchor (``lat0``, ``lon0``)."""
    k_n0, _ = _east_scale(lat0)
    mid = lat0 + 0.5 * north / k_n0
    k_n, k_e = _east_scale(mid)
    lat = lat0 + north / k_n
    lon = _wrap_lon(lon0 + east / k_e)
    return lat, lon
