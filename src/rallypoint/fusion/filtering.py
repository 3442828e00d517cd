"""One filter step for a batch of observations bound for existing tracks (at most one per track).

Measurement noise comes from the observation's own ``ce_m``, else the source's configured sigma,
else the default of its kind of source (``settings.sources``); velocity is measured when the source
gives both speed and course. Reports older than the track's time but within ``late_window_s`` are
carried forward along the track's velocity with their noise grown by what the motion model allows
in the gap; older ones are refused. A position farther from the last estimate than the domain's top
speed allows (after a slack of ``jump_slack_sigmas`` of both uncertainties) is refused as a jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import numpy as np

from rallypoint.fusion.geodesy import Array, Index, Mask, from_enu, to_enu
from rallypoint.fusion.imm import InteractingMultipleModel
from rallypoint.fusion.predictor import Predictor
from rallypoint.fusion.settings import FusionSettings
from rallypoint.fusion.table import TrackTable
from rallypoint.fusion.updater import Updater, velocity_noise
from rallypoint.model.track import Observation


def epoch(t: datetime) -> float:
    """Epoch seconds of an aware datetime (a naive one is taken as UTC)."""
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).timestamp()


def plausible_extras(obs: Observation) -> bool:
    """Accuracy, speed, course and altitude, where given, are finite (and the first two not negative)."""
    ce, speed, course, alt = obs.ce_m, obs.speed_mps, obs.course_deg, obs.alt_m
    return (
        (ce is None or 0.0 < ce < math.inf)
        and (speed is None or 0.0 <= speed < math.inf)
        and (course is None or -math.inf < course < math.inf)
        and (alt is None or -math.inf < alt < math.inf)
    )


def sanitised(obs: Observation, latest: float) -> tuple[Observation, list[str]]:
    """The observation without a non-finite or negative accuracy, speed, course or altitude, and
    without a source time after ``latest`` (epoch s), with the reasons for the counters
    (``invalid_accuracy``, ``invalid_velocity``, ``invalid_altitude``, ``future_time``)."""
    changes: dict[str, None] = {}
    reasons: list[str] = []
    if obs.source_time is not None and epoch(obs.source_time) > latest:
        # A source clock ahead of ours would hold the track in the future and make every later
        # report look out of order: its own time is not trusted, the receive time is.
        changes["source_time"] = None
        reasons.append("future_time")
    if obs.ce_m is not None and not 0.0 < obs.ce_m < math.inf:
        changes["ce_m"] = None
        reasons.append("invalid_accuracy")
    if (obs.speed_mps is not None and not 0.0 <= obs.speed_mps < math.inf) or (
        obs.course_deg is not None and not math.isfinite(obs.course_deg)
    ):
        changes["speed_mps"] = changes["course_deg"] = None
        reasons.append("invalid_velocity")
    if obs.alt_m is not None and not math.isfinite(obs.alt_m):
        changes["alt_m"] = None
        reasons.append("invalid_altitude")
    return msgspec.structs.replace(obs, **changes), reasons


class Batch:
    """Observations bound for existing tracks, at most one per track, as numpy columns."""

    def __init__(
        self, slots: list[int], observations: list[Observation], times: list[float], sigmas: list[float]
    ) -> None:
        self.slots: Index = np.asarray(slots, dtype=np.intp)
        self.observations = observations
        self.t = np.asarray(times)
        self.lat = np.fromiter((o.lat for o in observations), dtype=float, count=len(observations))
        self.lon = np.fromiter((o.lon for o in observations), dtype=float, count=len(observations))
        self.sigma = np.asarray(sigmas)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Per observation of a batch: applied, refused as too old, refused as a jump; and time since the track."""

    ok: list[bool]
    too_old: list[bool]
    jump: list[bool]
    dt: list[float]


class Measurements:
    """Noise and velocity of observations, and the state a new track starts from."""

    def __init__(self, settings: FusionSettings) -> None:
        self.settings = settings

    def sigma(self, obs: Observation) -> float:
        """1-sigma horizontal noise (metres) of the observation's position."""
        s = self.settings
        sigma = obs.ce_m or s.source_sigma_m.get(obs.source)
        if sigma is None:
            sigma = s.sources[obs.identity.kind if obs.identity is not None else None].position_m
        return max(sigma, s.min_sigma_m)

    def velocity(self, observations: list[Observation]) -> tuple[Mask, Array, Array]:
        """Which observations measure velocity; their east/north velocities (k,2) and covariances (k,2,2)."""
        have = np.fromiter(
            (o.speed_mps is not None and o.course_deg is not None for o in observations),
            dtype=bool,
            count=len(observations),
        )
        chosen = [o for o, h in zip(observations, have.tolist(), strict=True) if h]
        speed = np.fromiter((o.speed_mps or 0.0 for o in chosen), dtype=float, count=len(chosen))
        course = np.fromiter((o.course_deg or 0.0 for o in chosen), dtype=float, count=len(chosen))
        noise = [self.settings.sources[o.identity.kind if o.identity is not None else None] for o in chosen]
        r = velocity_noise(
            speed,
            course,
            np.fromiter((n.speed_mps for n in noise), dtype=float, count=len(chosen)),
            np.fromiter((n.course_deg for n in noise), dtype=float, count=len(chosen)),
        )
        rad = np.radians(course)
        return have, np.stack([speed * np.sin(rad), speed * np.cos(rad)], axis=1), r

    def initial_state(self, obs: Observation, sigma: float) -> tuple[Array, Array]:
        """Velocity (2,) and covariance (4,4) of a track started from ``obs``."""
        p = np.zeros((4, 4))
        p[0, 0] = p[1, 1] = sigma * sigma
        if obs.speed_mps is not None and obs.course_deg is not None:
            noise = self.settings.sources[obs.identity.kind if obs.identity is not None else None]
            speed = np.array([obs.speed_mps])
            course = np.array([obs.course_deg])
            p[2:4, 2:4] = velocity_noise(speed, course, np.array([noise.speed_mps]), np.array([noise.course_deg]))[0]
            c = math.radians(obs.course_deg)
            return np.array([obs.speed_mps * math.sin(c), obs.speed_mps * math.cos(c)]), p
        p[2, 2] = p[3, 3] = self.settings.domains[obs.domain].init_speed_sigma ** 2
        return np.zeros(2), p


def filter_step(
    table: TrackTable,
    b: Batch,
    predictor: Predictor,
    updater: Updater,
    measurements: Measurements,
    imm: InteractingMultipleModel | None = None,
) -> Outcome:
    """Predict and update the batch's tracks in ``table`` in place; returns what happened to each observation."""
    s = measurements.settings
    n = b.slots.size
    t0 = table.t[b.slots]
    dt = b.t - t0
    too_old = dt < -s.late_window_s
    lag = np.maximum(-dt, 0.0)
    x = np.zeros((n, 4))
    x[:, 2:4] = table.v[b.slots]
    accel = table.accel[b.slots]
    xp, pp = predictor.predict(x, table.p[b.slots], np.maximum(dt, 0.0), accel)
    lat0 = table.lat[b.slots]
    lon0 = table.lon[b.slots]
    ze, zn = to_enu(lat0, lon0, b.lat, b.lon)
    est_sigma = np.sqrt(np.maximum(table.p[b.slots, 0, 0], table.p[b.slots, 1, 1]))
    slack = s.jump_slack_sigmas * (est_sigma + b.sigma)
    jump = np.hypot(ze, zn) - slack > table.max_speed[b.slots] * np.abs(dt)
    r = np.zeros((n, 2, 2))
    var = b.sigma**2 + accel**2 * lag**3 / 3.0
    r[:, 0, 0] = var + lag**2 * pp[:, 2, 2]
    r[:, 1, 1] = var + lag**2 * pp[:, 3, 3]
    ze = ze + xp[:, 2] * lag
    zn = zn + xp[:, 3] * lag
    has_vel, vel, r_vel = measurements.velocity(b.observations)
    ok = ~too_old & ~jump
    xu = xp.copy()
    pu = pp.copy()
    on_imm = table.imm[b.slots] if imm is not None else np.zeros(n, dtype=bool)
    dt_pred = np.maximum(dt, 0.0)

    def apply(mask: Mask, z: Array, rz: Array) -> None:
        single = ~on_imm[mask]
        if single.all():
            xu[mask], pu[mask] = updater.update(xp[mask], pp[mask], z, rz)
            return
        chosen = np.flatnonzero(mask)
        if single.any():
            one = chosen[single]
            xu[one], pu[one] = updater.update(xp[one], pp[one], z[single], rz[single])
        assert imm is not None
        many = chosen[~single]
        sl = b.slots[many]
        xs, ps, mu, xc, pc = imm.step(
            table.imm_x[sl], table.imm_p[sl], table.imm_mu[sl], dt_pred[many], z[~single], rz[~single]
        )
        xu[many], pu[many] = xc, pc
        xs[:, :, 0:2] -= xc[:, None, 0:2]  # the models' positions follow the anchor to the new estimate
        table.imm_x[sl], table.imm_p[sl], table.imm_mu[sl] = xs, ps, mu

    pos_only = ok & ~has_vel
    if pos_only.any():
        apply(pos_only, np.stack([ze[pos_only], zn[pos_only]], axis=1), r[pos_only])
    with_vel = ok & has_vel
    if with_vel.any():
        sel = with_vel[has_vel]
        z4 = np.concatenate([np.stack([ze[with_vel], zn[with_vel]], axis=1), vel[sel]], axis=1)
        r4 = np.zeros((int(with_vel.sum()), 4, 4))
        r4[:, 0:2, 0:2] = r[with_vel]
        r4[:, 2:4, 2:4] = r_vel[sel]
        apply(with_vel, z4, r4)
    _altitude_step(table, b, ok, measurements.settings.vertical_accel_sigma)
    new_lat, new_lon = from_enu(lat0, lon0, xu[:, 0], xu[:, 1])
    idx = b.slots[ok]
    table.lat[idx] = new_lat[ok]
    table.lon[idx] = new_lon[ok]
    table.v[idx] = xu[ok, 2:4]
    table.p[idx] = pu[ok]
    table.t[idx] = np.maximum(t0[ok], b.t[ok])
    return Outcome(ok.tolist(), too_old.tolist(), jump.tolist(), dt.tolist())


def altitude_sigma(sigma: float) -> float:
    """1-sigma error of a reported altitude: GNSS vertical error is typically 1.5 x the horizontal."""
    return 1.5 * sigma


def _altitude_step(table: TrackTable, b: Batch, ok: Mask, accel_sigma: float) -> None:
    """Constant-climb Kalman step for the tracks of the batch that report an altitude and have one.

    Tracks reporting their first altitude start the filter in the tracker's bookkeeping instead.
    """
    alt = np.fromiter(
        (math.nan if o.alt_m is None else o.alt_m for o in b.observations), dtype=float, count=len(b.observations)
    )
    mask = ok & ~np.isnan(alt) & table.has_alt[b.slots]
    if not mask.any():
        return
    sl = b.slots[mask]
    dt = np.maximum(b.t[mask] - table.alt_t[sl], 0.0)
    z = table.alt[sl] + table.climb[sl] * dt
    p = table.pz[sl]
    q = accel_sigma * accel_sigma
    p00 = p[:, 0, 0] + 2.0 * dt * p[:, 0, 1] + dt * dt * p[:, 1, 1] + q * dt**3 / 3.0
    p01 = p[:, 0, 1] + dt * p[:, 1, 1] + q * dt**2 / 2.0
    p11 = p[:, 1, 1] + q * dt
    s = p00 + altitude_sigma(1.0) ** 2 * b.sigma[mask] ** 2
    k0 = p00 / s
    k1 = p01 / s
    innovation = alt[mask] - z
    table.alt[sl] = z + k0 * innovation
    table.climb[sl] = table.climb[sl] + k1 * innovation
    out = np.empty_like(p)
    out[:, 0, 0] = (1.0 - k0) * p00
    out[:, 0, 1] = out[:, 1, 0] = (1.0 - k0) * p01
    out[:, 1, 1] = p11 - k1 * p01
    table.pz[sl] = out
    table.alt_t[sl] = np.maximum(table.alt_t[sl], b.t[mask])
