"""Small deterministic scenes for the fusion tests: straight movers in metres around a reference point."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from rallypoint.fusion.geodesy import from_enu
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
LAT0 = 59.9
LON0 = 10.7


def at(seconds: float) -> datetime:
    """The scene time ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def latlon(east: float, north: float) -> tuple[float, float]:
    """Latitude and longitude of a point east/north metres from the scene's reference point."""
    lat, lon = from_enu(np.array([LAT0]), np.array([LON0]), np.array([east]), np.array([north]))
    return float(lat[0]), float(lon[0])


def mmsi(value: str = "227006760") -> Identity:
    return Identity(kind=IdentityKind.MMSI, value=value)


def obs(
    seconds: float,
    east: float,
    north: float,
    *,
    identity: Identity | None = None,
    source: str = "ais",
    domain: Domain = Domain.SEA,
    speed: float | None = None,
    course: float | None = None,
    ce: float | None = None,
    received_delay: float = 0.0,
    name: str | None = None,
) -> Observation:
    """An observation at scene time ``seconds`` of a point east/north metres from the reference."""
    lat, lon = latlon(east, north)
    return Observation(
        source=source,
        received_at=at(seconds + received_delay),
        source_time=at(seconds),
        lat=lat,
        lon=lon,
        domain=domain,
        identity=identity,
        speed_mps=speed,
        course_deg=course,
        ce_m=ce,
        name=name,
    )


def course_of(ve: float, vn: float) -> float:
    """Course (degrees true) of an east/north velocity."""
    return math.degrees(math.atan2(ve, vn)) % 360.0
