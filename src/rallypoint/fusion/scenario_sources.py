"""Simulated sources observing a ``Scenario``: noise, delay, drops, duplicates, out-of-order, clutter.

Each ``SourceModel`` reports the targets of its domains every ``period_s`` (at a per-target phase),
adds Gaussian position noise of ``sigma_m`` (1-sigma, metres, both axes), drops a report with
``p_drop``, delivers it ``delay_s`` plus an exponential jitter of mean ``jitter_s`` after the
measurement (so late reports overtake earlier ones), repeats some (``p_duplicate``, as a message
heard by two receivers) and, for a radar-like source without identity, adds false alarms
(``clutter_per_scan``) inside its coverage. ``simulate`` returns every report in delivery order,
each paired with the truth it came from (``None`` for clutter).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import timedelta

import msgspec
import numpy as np

from rallypoint.fusion.scenario import Scenario, Target
from rallypoint.model.track import Domain, Observation


class SourceKind(enum.StrEnum):
    """What a simulated source imitates; picks its wire format when emitted."""

    ADSB = "adsb"  # SBS-1 BaseStation lines
    AIS = "ais"  # !AIVDM sentences
    RADAR = "radar"  # CoT, how="m-r", no identity
    GPS = "gps"  # NMEA $GPRMC/$GPGGA, one receiver per ground unit


@dataclass(frozen=True)
class SourceModel:
    """How one simulated source sees the world."""

    name: str
    kind: SourceKind
    domains: frozenset[Domain]
    period_s: float
    sigma_m: float
    velocity_sigma_mps: float | None  # None: the source reports no velocity
    p_drop: float
    delay_s: float
    jitter_s: float
    identity: bool = True
    p_duplicate: float = 0.0
    clutter_per_scan: float = 0.0
    range_m: float | None = None  # coverage around the frame's origin; None: everywhere
    quality: str | None = None


DEFAULT_SOURCES: tuple[SourceModel, ...] = (
    SourceModel(
        "sim-adsb",
        SourceKind.ADSB,
        frozenset({Domain.AIR}),
        period_s=1.0,
        sigma_m=15.0,
        velocity_sigma_mps=1.0,
        p_drop=0.10,
        delay_s=0.3,
        jitter_s=0.2,
        quality="NACp=9",
    ),
    SourceModel(
        "sim-ais",
        SourceKind.AIS,
        frozenset({Domain.SEA}),
        period_s=6.0,
        sigma_m=25.0,
        velocity_sigma_mps=0.3,
        p_drop=0.15,
        delay_s=1.0,
        jitter_s=3.0,
        p_duplicate=0.05,
        quality="PA=0",
    ),
    SourceModel(
        "sim-radar",
        SourceKind.RADAR,
        frozenset({Domain.AIR, Domain.SEA}),
        period_s=4.0,
        sigma_m=80.0,
        velocity_sigma_mps=None,
        p_drop=0.10,
        delay_s=0.5,
        jitter_s=0.5,
        identity=False,
        clutter_per_scan=2.0,
        range_m=40_000.0,
        quality="radar",
    ),
    SourceModel(
        "sim-gps",
        SourceKind.GPS,
        frozenset({Domain.GROUND}),
        period_s=1.0,
        sigma_m=5.0,
        velocity_sigma_mps=0.2,
        p_drop=0.05,
        delay_s=0.2,
        jitter_s=0.1,
        quality="HDOP=1.0",
    ),
)


@dataclass(frozen=True)
class SimReport:
    """One delivered report: when it arrives, when it was measured, which target it is (``None``: clutter)."""

    deliver_s: float
    measured_s: float
    truth_id: str | None
    source_kind: SourceKind
    observation: Observation


def simulate(
    scenario: Scenario, sources: tuple[SourceModel, ...] = DEFAULT_SOURCES, seed: int | None = None
) -> list[SimReport]:
    """Every report of every source over the scenario, in delivery order (ties keep measurement order)."""
    # A stream of its own, so changing the sources never changes the truth drawn from the scenario seed.
    rng = np.random.default_rng([scenario.seed if seed is None else seed, 7])
    duration = float(scenario.targets[0].times[-1]) if scenario.targets else 0.0
    reports: list[SimReport] = []
    for source in sources:
        for target in scenario.targets:
            if target.domain in source.domains:
                reports += _observe(scenario, source, target, duration, rng)
        if source.clutter_per_scan > 0:
            reports += _clutter(scenario, source, duration, rng)
    reports.sort(key=lambda r: (r.deliver_s, r.measured_s))
    return reports


def _observe(
    scenario: Scenario, source: SourceModel, target: Target, duration: float, rng: np.random.Generator
) -> list[SimReport]:
    times = np.arange(rng.uniform(0.0, source.period_s), duration, source.period_s)
    east = np.interp(times, target.times, target.east)
    north = np.interp(times, target.times, target.north)
    alt = np.interp(times, target.times, target.alt)
    v_e = np.interp(times, target.times, target.v_east)
    v_n = np.interp(times, target.times, target.v_north)
    v_u = np.interp(times, target.times, target.v_up)
    kept = rng.uniform(size=len(times)) >= source.p_drop
    if source.range_m is not None:
        kept &= np.hypot(east, north) <= source.range_m
    noise = rng.normal(0.0, source.sigma_m, size=(len(times), 2))
    v_noise = rng.normal(0.0, source.velocity_sigma_mps or 0.0, size=(len(times), 2))
    alt_noise = rng.normal(0.0, 8.0 if source.identity else 150.0, size=len(times))
    delays = (
        source.delay_s + rng.exponential(source.jitter_s, size=len(times))
        if source.jitter_s > 0
        else (np.full(len(times), source.delay_s))
    )
    duplicate = rng.uniform(size=len(times)) < source.p_duplicate
    duplicate_lag = rng.uniform(0.1, 2.0, size=len(times))
    out: list[SimReport] = []
    for k in np.flatnonzero(kept):
        t = float(times[k])
        ve, vn = v_e[k] + v_noise[k, 0], v_n[k] + v_noise[k, 1]
        has_velocity = source.velocity_sigma_mps is not None
        obs_alt = None if target.domain is Domain.SEA else float(alt[k] + alt_noise[k])
        deliver = t + float(delays[k])
        obs = _observation(
            scenario,
            source,
            target,
            t,
            deliver,
            float(east[k] + noise[k, 0]),
            float(north[k] + noise[k, 1]),
            alt_m=obs_alt,
            course_deg=math.degrees(math.atan2(ve, vn)) % 360.0 if has_velocity else None,
            speed_mps=math.hypot(ve, vn) if has_velocity else None,
            climb_mps=float(v_u[k]) if has_velocity and target.domain is Domain.AIR else None,
        )
        out.append(SimReport(deliver, t, target.target_id, source.kind, obs))
        if duplicate[k]:
            later = deliver + float(duplicate_lag[k])
            copy = msgspec.structs.replace(obs, received_at=scenario.start + timedelta(seconds=later))
            out.append(SimReport(later, t, target.target_id, source.kind, copy))
    return out


def _observation(
    scenario: Scenario,
    source: SourceModel,
    target: Target | None,
    measured: float,
    deliver: float,
    east: float,
    north: float,
    *,
    alt_m: float | None = None,
    course_deg: float | None = None,
    speed_mps: float | None = None,
    climb_mps: float | None = None,
    domain: Domain | None = None,
) -> Observation:
    received = scenario.start + timedelta(seconds=deliver)
    lat, lon = scenario.frame.to_geodetic(east, north)
    known = target is not None and source.identity
    return Observation(
        source=source.name,
        received_at=received,
        source_time=scenario.start + timedelta(seconds=measured),
        lat=lat,
        lon=lon,
        domain=domain or (target.domain if target else Domain.UNKNOWN),
        identity=target.identity if known and target else None,
        name=target.name if known and target and source.kind is not SourceKind.GPS else None,
        alt_m=alt_m,
        course_deg=course_deg,
        speed_mps=speed_mps,
        climb_mps=climb_mps,
        ce_m=source.sigma_m,
        quality=source.quality,
        category=target.category if known and target else None,
    )


def _clutter(scenario: Scenario, source: SourceModel, duration: float, rng: np.random.Generator) -> list[SimReport]:
    """False alarms: a Poisson number per scan, uniform over the coverage disk, air or surface at random."""
    radius = source.range_m or scenario.spec.radius_m
    out: list[SimReport] = []
    for scan_start in np.arange(0.0, duration, source.period_s):
        for _ in range(int(rng.poisson(source.clutter_per_scan))):
            r, bearing = radius * math.sqrt(rng.uniform()), rng.uniform(0.0, 2 * math.pi)
            t = float(scan_start + rng.uniform(0.0, source.period_s))
            deliver = t + source.delay_s + float(rng.exponential(source.jitter_s) if source.jitter_s > 0 else 0.0)
            domain = Domain.AIR if rng.uniform() < 0.5 else Domain.SEA
            alt = float(rng.uniform(300.0, 9_000.0)) if domain is Domain.AIR else None
            obs = _observation(
                scenario,
                source,
                None,
                t,
                deliver,
                r * math.sin(bearing),
                r * math.cos(bearing),
                alt_m=alt,
                domain=domain,
            )
            out.append(SimReport(deliver, t, None, source.kind, obs))
    return out
