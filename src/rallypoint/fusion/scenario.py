"""Ground truth for evaluation: seeded trajectories of aircraft, vessels and ground units.

Each target follows a list of legs (hold, turn, speed change, climb) integrated on a fine time grid
in a ``LocalFrame`` around the scenario's origin; ``Scenario.truth_at(t)`` interpolates it. The
sources that observe the truth are in ``scenario_sources``; both are pure (a seed and a start time
in, numbers out) so a scenario replays identically on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from rallypoint.fusion.metrics import LocalFrame, Points
from rallypoint.model.track import Domain, Identity, IdentityKind

STEP_S = 0.5  # integration grid; legs turn at most a few degrees per step, so interpolation is exact enough
DEFAULT_START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Leg:
    """A stretch of constant turn rate, acceleration and climb rate."""

    duration_s: float
    turn_deg_s: float = 0.0
    accel_mps2: float = 0.0
    climb_mps: float = 0.0


@dataclass(frozen=True)
class TruthState:
    """Where one target is at one instant (local metres and geodetic degrees)."""

    target_id: str
    t: float
    east: float
    north: float
    lat: float
    lon: float
    alt_m: float
    course_deg: float
    speed_mps: float
    climb_mps: float


@dataclass(frozen=True)
class Target:
    """One real object: who it is and where it is at every grid step."""

    target_id: str
    domain: Domain
    identity: Identity
    name: str
    category: str | None
    times: npt.NDArray[np.float64]
    east: npt.NDArray[np.float64]
    north: npt.NDArray[np.float64]
    alt: npt.NDArray[np.float64]
    v_east: npt.NDArray[np.float64]
    v_north: npt.NDArray[np.float64]
    v_up: npt.NDArray[np.float64]

    def state_at(self, t: float, frame: LocalFrame) -> TruthState:
        """The interpolated state at ``t`` seconds after the start (clamped to the scenario)."""
        ts = self.times
        e = float(np.interp(t, ts, self.east))
        n = float(np.interp(t, ts, self.north))
        ve = float(np.interp(t, ts, self.v_east))
        vn = float(np.interp(t, ts, self.v_north))
        lat, lon = frame.to_geodetic(e, n)
        return TruthState(
            target_id=self.target_id,
            t=t,
            east=e,
            north=n,
            lat=lat,
            lon=lon,
            alt_m=float(np.interp(t, ts, self.alt)),
            course_deg=math.degrees(math.atan2(ve, vn)) % 360.0,
            speed_mps=math.hypot(ve, vn),
            climb_mps=float(np.interp(t, ts, self.v_up)),
        )


@dataclass(frozen=True)
class ScenarioSpec:
    """A named recipe: how many of each kind, how long, over how large an area."""

    name: str
    aircraft: int
    vessels: int
    ground: int
    duration_s: float
    radius_m: float
    lat0: float = 54.40
    lon0: float = 10.60


SCENARIOS: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        ScenarioSpec("mixed", aircraft=8, vessels=8, ground=4, duration_s=300.0, radius_m=25_000.0),
        ScenarioSpec("small", aircraft=3, vessels=3, ground=2, duration_s=60.0, radius_m=10_000.0),
        ScenarioSpec("busy", aircraft=20, vessels=24, ground=6, duration_s=300.0, radius_m=30_000.0),
    )
}


@dataclass(frozen=True)
class Scenario:
    """Targets with their whole trajectories, the frame they live in and the wall-clock start."""

    spec: ScenarioSpec
    seed: int
    start: datetime
    frame: LocalFrame
    targets: tuple[Target, ...]

    def truth_at(self, t: float) -> list[TruthState]:
        """Every target's state at ``t`` seconds after the start."""
        return [target.state_at(t, self.frame) for target in self.targets]

    def truth_points(self, t: float) -> Points:
        """Every target's east/north position at ``t``, as an ``(n, 2)`` array for OSPA."""
        states = self.truth_at(t)
        return np.array([[s.east, s.north] for s in states]) if states else np.zeros((0, 2))


def build_scenario(
    spec: ScenarioSpec, seed: int, start: datetime = DEFAULT_START, duration_s: float | None = None
) -> Scenario:
    """Generate the scenario ``spec`` with ``seed``; ``duration_s`` overrides the spec's length."""
    if start.tzinfo is None:
        raise ValueError("the scenario start must be an aware UTC datetime")
    duration = spec.duration_s if duration_s is None else duration_s
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    rng = np.random.default_rng(seed)
    frame = LocalFrame(spec.lat0, spec.lon0)
    targets: list[Target] = []
    used: set[str] = set()
    for i in range(spec.aircraft):
        icao = _unique(used, lambda: f"{int(rng.integers(0x3C0000, 0x3FFFFF)):06x}")
        start_state = _entry(rng, spec.radius_m, speed=rng.uniform(110.0, 240.0), alt=rng.uniform(1_500.0, 10_000.0))
        targets.append(
            _integrate(
                f"air-{i + 1}",
                Domain.AIR,
                Identity(IdentityKind.ICAO, icao),
                f"RPX{100 + i}",
                "A3",
                start_state,
                _aircraft_legs(rng, duration),
                duration,
                min_speed=90.0,
                min_alt=300.0,
            )
        )
    for i in range(spec.vessels):
        mmsi = _unique(used, lambda: str(int(rng.integers(211_000_000, 277_999_999))))
        start_state = _entry(rng, spec.radius_m * 0.8, speed=rng.uniform(3.0, 10.0), alt=0.0)
        ship_type = str(int(rng.choice([30, 52, 60, 70, 80])))
        targets.append(
            _integrate(
                f"sea-{i + 1}",
                Domain.SEA,
                Identity(IdentityKind.MMSI, mmsi),
                f"SIM VESSEL {i + 1}",
                ship_type,
                start_state,
                _vessel_legs(rng, duration),
                duration,
                min_speed=0.5,
                min_alt=0.0,
            )
        )
    for i in range(spec.ground):
        start_state = _entry(rng, spec.radius_m * 0.5, speed=rng.uniform(6.0, 15.0), alt=20.0)
        targets.append(
            _integrate(
                f"ground-{i + 1}",
                Domain.GROUND,
                Identity(IdentityKind.GPS, f"sim-gps-{i + 1}"),
                f"UNIT {i + 1}",
                None,
                start_state,
                _ground_legs(rng, duration, float(start_state[3])),
                duration,
                min_speed=0.0,
                min_alt=0.0,
            )
        )
    return Scenario(spec=spec, seed=seed, start=start, frame=frame, targets=tuple(targets))


def _unique(used: set[str], draw: Callable[[], str]) -> str:
    while (value := str(draw())) in used:
        pass
    used.add(value)
    return value


def _entry(rng: np.random.Generator, radius: float, *, speed: float, alt: float) -> tuple[float, ...]:
    """A start somewhere in the area, heading roughly towards its middle so the target stays in view."""
    r = radius * math.sqrt(rng.uniform(0.2, 1.0))
    bearing = rng.uniform(0.0, 2 * math.pi)
    east, north = r * math.sin(bearing), r * math.cos(bearing)
    heading = (bearing + math.pi + rng.uniform(-1.0, 1.0)) % (2 * math.pi)
    return east, north, alt, speed, heading


def _aircraft_legs(rng: np.random.Generator, duration: float) -> list[Leg]:
    legs: list[Leg] = []
    total = 0.0
    while total < duration:
        straight = Leg(rng.uniform(20.0, 60.0), climb_mps=float(rng.choice([0.0, 0.0, rng.uniform(-12.0, 12.0)])))
        turn = Leg(
            rng.uniform(15.0, 45.0),
            turn_deg_s=rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 3.0),
            accel_mps2=rng.uniform(-0.5, 0.5),
        )
        legs += [straight, turn]
        total += straight.duration_s + turn.duration_s
    return legs


def _vessel_legs(rng: np.random.Generator, duration: float) -> list[Leg]:
    legs: list[Leg] = []
    total = 0.0
    while total < duration:
        # Waypoint legs: steady course, then a slow turn onto the next leg.
        straight = Leg(rng.uniform(60.0, 180.0))
        turn = Leg(
            rng.uniform(20.0, 60.0),
            turn_deg_s=rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0),
            accel_mps2=rng.uniform(-0.03, 0.03),
        )
        legs += [straight, turn]
        total += straight.duration_s + turn.duration_s
    return legs


def _ground_legs(rng: np.random.Generator, duration: float, cruise: float) -> list[Leg]:
    legs: list[Leg] = []
    total = 0.0
    while total < duration:
        # Road-like: straight stretches, right-angle corners, now and then a stop.
        legs.append(Leg(rng.uniform(30.0, 90.0)))
        legs.append(Leg(6.0, turn_deg_s=rng.choice([-1.0, 1.0]) * 15.0))
        if rng.uniform() < 0.3:
            brake = cruise / 2.0
            legs += [Leg(brake, accel_mps2=-2.0), Leg(rng.uniform(10.0, 30.0)), Leg(brake, accel_mps2=2.0)]
        total = sum(leg.duration_s for leg in legs)
    return legs


def _integrate(
    target_id: str,
    domain: Domain,
    identity: Identity,
    name: str,
    category: str | None,
    state: tuple[float, ...],
    legs: list[Leg],
    duration: float,
    *,
    min_speed: float,
    min_alt: float,
) -> Target:
    east, north, alt, speed, heading = state
    steps = math.ceil(duration / STEP_S) + 1
    times = np.arange(steps, dtype=np.float64) * STEP_S
    out = np.zeros((steps, 6))
    leg_index, leg_left = 0, legs[0].duration_s
    for k in range(steps):
        leg = legs[leg_index]
        climb = leg.climb_mps if alt > min_alt or leg.climb_mps > 0 else 0.0
        out[k] = (east, north, alt, speed * math.sin(heading), speed * math.cos(heading), climb)
        # Midpoint heading keeps a constant-rate turn on its circle.
        turn = math.radians(leg.turn_deg_s) * STEP_S
        mid = heading + turn / 2.0
        east += speed * math.sin(mid) * STEP_S
        north += speed * math.cos(mid) * STEP_S
        alt = max(min_alt, alt + climb * STEP_S)
        heading = (heading + turn) % (2 * math.pi)
        speed = max(min_speed, speed + leg.accel_mps2 * STEP_S)
        leg_left -= STEP_S
        if leg_left <= 0 and leg_index + 1 < len(legs):
            leg_index += 1
            leg_left += legs[leg_index].duration_s
    return Target(
        target_id=target_id,
        domain=domain,
        identity=identity,
        name=name,
        category=category,
        times=times,
        east=out[:, 0],
        north=out[:, 1],
        alt=out[:, 2],
        v_east=out[:, 3],
        v_north=out[:, 4],
        v_up=out[:, 5],
    )
