"""The tracker's tunables: motion per domain, measurement noise per source kind, gates and lifecycle.

Every number here has a reason written next to it; all of them can be replaced by passing another
``FusionSettings`` to the tracker (the feed service builds one from the feed configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from rallypoint.model.track import Domain, IdentityKind


@dataclass(frozen=True, slots=True)
class DomainModel:
    """How objects of one domain move, and when their tracks go stale.

    ``accel_sigma`` is the spectral density (m/s^2 per sqrt(Hz)) of the white-noise acceleration of
    the constant-velocity model; ``max_speed_mps`` bounds plausible jumps; ``init_speed_sigma`` is
    the velocity uncertainty of a new track whose source gave no velocity; ``stale_s`` deletes a
    confirmed track with no update for that long; ``revisit_s`` is the expected report interval of
    an identity-less source, the unit in which a tentative track counts misses.
    """

    accel_sigma: float
    max_speed_mps: float
    init_speed_sigma: float
    stale_s: float
    revisit_s: float


@dataclass(frozen=True, slots=True)
class SourceNoise:
    """Default 1-sigma measurement noise of a kind of source, when an observation states none."""

    position_m: float
    speed_mps: float
    course_deg: float


def _domains() -> Mapping[Domain, DomainModel]:
    return MappingProxyType(
        {
            # An airliner's standard-rate turn (3 deg/s at 250 m/s) is 13 m/s^2 of lateral acceleration.
            # Aircraft use the IMM below by default; this single-model figure applies with air_imm off:
            # with 3 m/s^2 the filter lags ~100 m in such a turn and loses identity-less reports to
            # the gate, 10 m/s^2 keeps them (tests/unit/fusion/test_manoeuvres.py). 400 m/s is above
            # any civil aircraft; ADS-B tracks go stale after a minute (readsb: 60 s).
            Domain.AIR: DomainModel(
                accel_sigma=10.0, max_speed_mps=400.0, init_speed_sigma=150.0, stale_s=60.0, revisit_s=5.0
            ),
            # Ships change speed and heading slowly; 40 m/s (78 kn) is above fast craft. AIS class A
            # at anchor reports every 3 minutes and class B every 3 minutes when slow: 10 minutes stale.
            Domain.SEA: DomainModel(
                accel_sigma=0.2, max_speed_mps=40.0, init_speed_sigma=10.0, stale_s=600.0, revisit_s=30.0
            ),
            # Vehicles and people; 70 m/s is 250 km/h. APRS trackers beacon every 1-10 minutes.
            Domain.GROUND: DomainModel(
                accel_sigma=1.0, max_speed_mps=70.0, init_speed_sigma=15.0, stale_s=900.0, revisit_s=30.0
            ),
            # Unknown: the loosest of the above, so nothing real is rejected.
            Domain.UNKNOWN: DomainModel(
                accel_sigma=3.0, max_speed_mps=400.0, init_speed_sigma=100.0, stale_s=300.0, revisit_s=10.0
            ),
        }
    )


def _sources() -> Mapping[IdentityKind | None, SourceNoise]:
    return MappingProxyType(
        {
            # ADS-B positions with typical NACp 8-10 (EPU 93 m..10 m, 95%); velocity in whole knots.
            IdentityKind.ICAO: SourceNoise(position_m=30.0, speed_mps=1.0, course_deg=2.0),
            # AIS: position accuracy flag 0 means "> 10 m"; SOG in tenths of knots, COG in tenths of degrees.
            IdentityKind.MMSI: SourceNoise(position_m=15.0, speed_mps=0.3, course_deg=3.0),
            # APRS trackers: consumer GPS, positions rounded to 0.01 minute (~18 m), speed in whole knots/mph.
            IdentityKind.APRS: SourceNoise(position_m=20.0, speed_mps=1.0, course_deg=10.0),
            # TAK clients: phone GNSS; the CoT ce is used when the client sends one.
            IdentityKind.TAK: SourceNoise(position_m=10.0, speed_mps=1.0, course_deg=10.0),
            IdentityKind.GPS: SourceNoise(position_m=10.0, speed_mps=0.5, course_deg=5.0),
            IdentityKind.FEATURE: SourceNoise(position_m=5.0, speed_mps=1.0, course_deg=10.0),
            # Identity-less tracks from another system (radar-like CoT): coarse unless ce is given.
            None: SourceNoise(position_m=100.0, speed_mps=3.0, course_deg=10.0),
        }
    )


@dataclass(frozen=True, slots=True)
class FusionSettings:
    """Everything the tracker can be tuned with.

    ``source_sigma_m`` overrides the position noise of one source (by ``Observation.source``), the
    feed configuration's ``quality``; an observation's own ``ce_m`` wins over both tables.
    """

    domains: Mapping[Domain, DomainModel] = field(default_factory=_domains)
    sources: Mapping[IdentityKind | None, SourceNoise] = field(default_factory=_sources)
    source_sigma_m: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    min_sigma_m: float = 1.0  # no source is better than this (also keeps S well conditioned)
    # Gates: chi-square quantiles. 2 dof at p=0.9999 for observation-to-track association (a true
    # report falls outside once in 10,000, so a track rarely loses its object to the gate); 4 dof at
    # p=0.99 (position and velocity) for track-to-track "moving together".
    gate_chi2: float = 18.421
    pair_gate_chi2: float = 13.277
    association_radius_m: float = 10_000.0  # only tracks this close are candidates for an identity-less report
    pair_radius_m: float = 1_000.0  # only tracks this close are compared track-to-track
    pair_check_interval_s: float = 1.0
    merge_after: int = 3  # consecutive co-moving checks before an identity-less track joins an identified one
    propose_after: int = 5  # consecutive co-moving checks before two identities are proposed for merging
    # Initiator: an identity-less track is confirmed after M hits before N - M missed revisits.
    confirm_hits: int = 3
    confirm_window: int = 5
    identified_confirm_hits: int = 1  # a source-given identity is itself evidence; one report confirms
    late_window_s: float = 5.0  # older reports within this window are applied (see docs/fusion.md)
    vertical_accel_sigma: float = 1.0  # m/s^2 of the altitude filter (climbs start and level off)
    max_future_s: float = 10.0  # a source time further ahead of ``now`` is replaced by the receive time
    jump_slack_sigmas: float = 4.0
    jump_reinit_after: int = 3  # this many rejected jumps in a row restart the track at the new position
    report_tentative: bool = False
    # Aircraft: interacting multiple models (quiet / manoeuvring constant velocity) instead of one.
    # Against truth at 1 Hz with 30 m noise, RMS error straight 21 m instead of 28 m, in a
    # standard-rate turn 35 m instead of 38 m (tests/unit/fusion/test_manoeuvres.py); it costs about a
    # quarter of the tracker's throughput when a third of the tracks are aircraft.
    air_imm: bool = True
    imm_accel_sigma: tuple[float, float] = (2.0, 20.0)
    imm_sojourn_s: tuple[float, float] = (60.0, 20.0)  # mean time in each model
    imm_prior: float = 0.8  # probability of the quiet model for a new track
