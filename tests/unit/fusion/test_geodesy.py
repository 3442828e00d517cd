"""The tangent-plane projection against the WGS84 geodesic (pyproj), and its round trip."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from rallypoint.fusion.geodesy import from_enu, to_enu

GEOD = Geod(ellps="WGS84")


@pytest.mark.parametrize("lat0", [0.0, 30.0, 45.0, 60.0, 70.0, -65.0])
@pytest.mark.parametrize("distance", [100.0, 5_000.0, 20_000.0])
def test_distance_error_below_a_decimetre_within_20_km(lat0: float, distance: float) -> None:
    for azimuth in range(0, 360, 15):
        lon1, lat1, _ = GEOD.fwd(10.0, lat0, azimuth, distance)
        e, n = to_enu(np.array([lat0]), np.array([10.0]), np.array([lat1]), np.array([lon1]))
        assert abs(float(np.hypot(e, n)[0]) - distance) < 0.1
        lat2, lon2 = from_enu(np.array([lat0]), np.array([10.0]), e, n)
        _, _, back = GEOD.inv(lon1, lat1, float(lon2[0]), float(lat2[0]))
        assert back < 0.1


def test_across_the_antimeridian() -> None:
    e, n = to_enu(np.array([10.0]), np.array([179.99]), np.array([10.0]), np.array([-179.99]))
    assert 2_000 < float(e[0]) < 2_300
    assert abs(float(n[0])) < 1e-6
    _, lon = from_enu(np.array([10.0]), np.array([179.99]), e, n)
    assert float(lon[0]) == pytest.approx(-179.99)
