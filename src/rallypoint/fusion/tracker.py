"""The tracker: observations in, track reports out; time passed in, no I/O.

Observations with an identity update the track of that identity (created on first sight).
Observations without one are associated to nearby tracks by the hypothesiser and associator
(chi-square gated global nearest neighbour); the rest start identity-less ``trk-<n>`` tracks. The
numbers of all tracks a batch touches are predicted and updated together with numpy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import numpy as np

from rallypoint.fusion.geodesy import Array, Mask, from_enu, to_enu
from rallypoint.fusion.identity import anonymous_uid, uid_for
from rallypoint.fusion.lifecycle import Deleter, Initiator, MOfNInitiator, StalenessDeleter
from rallypoint.fusion.predictor import ConstantVelocity, Predictor
from rallypoint.fusion.settings import FusionSettings
from rallypoint.fusion.table import TrackMeta, TrackTable, report_of
from rallypoint.fusion.updater import KalmanUpdater, Updater, velocity_noise
from rallypoint.model.track import Observation, TrackReport, TrackStatus

_VERTICAL_FACTOR = 1.5  # GNSS vertical error is typically 1.5x the horizontal; le_m = 1.5 x sigma


def _epoch(t: datetime) -> float:
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).timestamp()


class _Batch:
    """Observations bound for existing tracks, at most one per track, as numpy columns."""

    def __init__(
        self, slots: list[int], observations: list[Observation], times: list[float], sigmas: list[float]
    ) -> None:
        self.slots = np.asarray(slots, dtype=np.intp)
        self.observations = observations
        self.t = np.asarray(times)
        self.lat = np.fromiter((o.lat for o in observations), dtype=float, count=len(observations))
        self.lon = np.fromiter((o.lon for o in observations), dtype=float, count=len(observations))
        self.sigma = np.asarray(sigmas)


class Tracker:
    """Multi-source tracker. ``update``/``update_many`` return the reports of the tracks they changed;
    ``expire`` returns the deletions due at ``now``. See docs/fusion.md (Tracker)."""

    def __init__(
        self,
        settings: FusionSettings | None = None,
        *,
        predictor: Predictor | None = None,
        updater: Updater | None = None,
        initiator: Initiator | None = None,
        deleter: Deleter | None = None,
        anonymous_prefix: str = "",
    ) -> None:
        self.settings = s = settings or FusionSettings()
        self.predictor = predictor or ConstantVelocity()
        self.updater = updater or KalmanUpdater()
        self.initiator = initiator or MOfNInitiator(s.confirm_hits, s.confirm_window, s.identified_confirm_hits)
        self.deleter = deleter or StalenessDeleter(s.confirm_hits, s.confirm_window)
        self.table = TrackTable()
        self._counts: Counter[str] = Counter()
        self._anonymous = 0
        self._anonymous_prefix = anonymous_prefix
        self._aliases: dict[str, str] = {}  # uid of a merged-away identity -> uid of the track it joined

    # -- public ---------------------------------------------------------------------------------

    def update(self, now: datetime, obs: Observation) -> list[TrackReport]:
        """Fold one observation in; returns the reports of the tracks it changed."""
        return self.update_many(now, (obs,))

    def update_many(self, now: datetime, observations: Iterable[Observation]) -> list[TrackReport]:
        """Fold a batch in (cheaper per observation than one by one); one report per changed track."""
        touched: dict[int, None] = {}
        identified: list[Observation] = []
        anonymous: list[Observation] = []
        for obs in observations:
            if not (-90.0 <= obs.lat <= 90.0 and -180.0 <= obs.lon <= 180.0):
                self._counts["invalid_position"] += 1
                continue
            (identified if obs.identity is not None else anonymous).append(obs)
        self._counts["observations"] += len(identified) + len(anonymous)
        if identified:
            self._apply_identified(identified, touched)
        return self._reports(touched)

    def expire(self, now: datetime) -> list[TrackReport]:
        """Delete the tracks that are stale at ``now``; returns DELETED reports of those that were shown."""
        doomed = self.deleter.doomed(self.table, _epoch(now))
        out: list[TrackReport] = []
        for slot in doomed.tolist():
            shown = self.table.get(slot).status is TrackStatus.CONFIRMED
            report = self._deletion(slot)
            self._counts["deleted_stale" if shown else "deleted_tentative"] += 1
            if shown or self.settings.report_tentative:
                out.append(report)
        return out

    def statistics(self) -> Mapping[str, int]:
        """Counts per reason (observations, duplicate, out_of_order, implausible_jump, ...) and track counts."""
        out = dict(self._counts)
        status = Counter(m.status.value for m in self.table.meta if m is not None)
        out["tracks"] = len(self.table)
        out["tracks_confirmed"] = status.get(TrackStatus.CONFIRMED.value, 0)
        out["tracks_tentative"] = status.get(TrackStatus.TENTATIVE.value, 0)
        return out

    def tracks(self) -> list[TrackReport]:
        """Reports of every live track (tentative ones included), e.g. for a late joiner or a test."""
        return self.table.reports(self.table.live_slots().tolist())

    # -- identified observations -----------------------------------------------------------------

    def _apply_identified(self, observations: list[Observation], touched: dict[int, None]) -> None:
        rounds: list[tuple[list[int], list[Observation], list[float], list[float]]] = []
        round_of: dict[int, int] = {}
        pending: set[tuple[int, str, float]] = set()  # (slot, source, time) already in this batch
        table = self.table
        for obs in observations:
            assert obs.identity is not None
            uid = uid_for(obs.identity)
            uid = self._aliases.get(uid, uid)
            t = _epoch(obs.source_time or obs.received_at)
            slot = table.by_uid.get(uid)
            if slot is None:
                touched[self._initiate(uid, obs, t)] = None
                continue
            if self._duplicate(table.get(slot), obs, t) or (slot, obs.source, t) in pending:
                self._counts["duplicate"] += 1
                continue
            if obs.source_time is not None:
                pending.add((slot, obs.source, t))
            r = round_of.get(slot, 0)
            round_of[slot] = r + 1
            if r == len(rounds):
                rounds.append(([], [], [], []))
            slots, batch, times, sigmas = rounds[r]
            slots.append(slot)
            batch.append(obs)
            times.append(t)
            sigmas.append(self._sigma(obs))
        for slots, batch, times, sigmas in rounds:
            self._update(_Batch(slots, batch, times, sigmas), touched)

    @staticmethod
    def _duplicate(meta: TrackMeta, obs: Observation, t: float) -> bool:
        """Same source, same source time as the last report of that source used by the track."""
        return obs.source_time is not None and meta.sources.get(obs.source) == t

    # -- filtering --------------------------------------------------------------------------------

    def _sigma(self, obs: Observation) -> float:
        s = self.settings
        sigma = obs.ce_m or s.source_sigma_m.get(obs.source)
        if sigma is None:
            sigma = s.sources[obs.identity.kind if obs.identity is not None else None].position_m
        return max(sigma, s.min_sigma_m)

    def _velocity(self, observations: list[Observation]) -> tuple[Mask, Array, Array]:
        """Velocity measurements (east, north) and their covariances, for those observations that have one."""
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

    def _update(self, b: _Batch, touched: dict[int, None]) -> None:
        s = self.settings
        table = self.table
        n = b.slots.size
        t0 = table.t[b.slots]
        dt = b.t - t0
        too_old = dt < -s.late_window_s
        lag = np.maximum(-dt, 0.0)
        dt_pred = np.maximum(dt, 0.0)
        x = np.zeros((n, 4))
        x[:, 2:4] = table.v[b.slots]
        accel = table.accel[b.slots]
        xp, pp = self.predictor.predict(x, table.p[b.slots], dt_pred, accel)
        lat0 = table.lat[b.slots]
        lon0 = table.lon[b.slots]
        ze, zn = to_enu(lat0, lon0, b.lat, b.lon)
        # Implausible jump: farther from the last estimate than the domain's top speed allows, after
        # a slack of a few sigmas of both the estimate and the measurement.
        max_speed = np.fromiter(
            (s.domains[table.get(slot).domain].max_speed_mps for slot in b.slots.tolist()), dtype=float, count=n
        )
        est_sigma = np.sqrt(np.maximum(table.p[b.slots, 0, 0], table.p[b.slots, 1, 1]))
        slack = s.jump_slack_sigmas * (est_sigma + b.sigma)
        jump = np.hypot(ze, zn) - slack > max_speed * np.abs(dt)
        # A late report (within the window) is carried forward to the track time along the track's
        # velocity, its noise grown by what the model could have done in the meantime.
        r = np.zeros((n, 2, 2))
        var = b.sigma**2 + accel**2 * lag**3 / 3.0
        r[:, 0, 0] = var + lag**2 * pp[:, 2, 2]
        r[:, 1, 1] = var + lag**2 * pp[:, 3, 3]
        ze = ze + xp[:, 2] * lag
        zn = zn + xp[:, 3] * lag
        has_vel, vel, r_vel = self._velocity(b.observations)
        ok = ~too_old & ~jump
        xu = xp.copy()
        pu = pp.copy()
        pos_only = ok & ~has_vel
        if pos_only.any():
            z = np.stack([ze[pos_only], zn[pos_only]], axis=1)
            xu[pos_only], pu[pos_only] = self.updater.update(xp[pos_only], pp[pos_only], z, r[pos_only])
        with_vel = ok & has_vel
        if with_vel.any():
            sel = with_vel[has_vel]
            z4 = np.concatenate([np.stack([ze[with_vel], zn[with_vel]], axis=1), vel[sel]], axis=1)
            r4 = np.zeros((int(with_vel.sum()), 4, 4))
            r4[:, 0:2, 0:2] = r[with_vel]
            r4[:, 2:4, 2:4] = r_vel[sel]
            xu[with_vel], pu[with_vel] = self.updater.update(xp[with_vel], pp[with_vel], z4, r4)
        new_lat, new_lon = from_enu(lat0, lon0, xu[:, 0], xu[:, 1])
        idx = b.slots[ok]
        table.lat[idx] = new_lat[ok]
        table.lon[idx] = new_lon[ok]
        table.v[idx] = xu[ok, 2:4]
        table.p[idx] = pu[ok]
        table.t[idx] = np.maximum(t0[ok], b.t[ok])
        self._bookkeeping(b, ok.tolist(), too_old.tolist(), jump.tolist(), dt.tolist(), touched)

    def _bookkeeping(
        self,
        b: _Batch,
        ok: list[bool],
        too_old: list[bool],
        jump: list[bool],
        dt: list[float],
        touched: dict[int, None],
    ) -> None:
        table = self.table
        counts = self._counts
        sigmas = b.sigma.tolist()
        times = b.t.tolist()
        for i, slot in enumerate(b.slots.tolist()):
            meta = table.get(slot)
            obs = b.observations[i]
            if too_old[i]:
                counts["out_of_order"] += 1
                continue
            if jump[i]:
                counts["implausible_jump"] += 1
                meta.reject_streak += 1
                if meta.reject_streak >= self.settings.jump_reinit_after:
                    counts["reinitialised"] += 1
                    self._restart(slot, obs, times[i])
                    touched[slot] = None
                continue
            meta.reject_streak = 0
            if dt[i] < 0.0:
                counts["late_applied"] += 1
            else:
                meta.time = obs.source_time or obs.received_at
            counts["updates"] += 1
            self._describe(meta, obs, times[i], sigmas[i])
            if self.initiator.on_hit(meta, dt[i], float(table.revisit[slot])):
                counts["confirmed"] += 1
            touched[slot] = None

    def _describe(self, meta: TrackMeta, obs: Observation, t: float, sigma: float) -> None:
        """Copy what the observation says besides the position onto the track."""
        if t >= meta.sources.get(obs.source, -math.inf):
            meta.sources[obs.source] = t
        if obs.name:
            meta.name = obs.name
        if obs.category:
            meta.category = obs.category
        if obs.alt_m is not None:
            meta.alt_m = obs.alt_m
            meta.alt_sigma_m = sigma * _VERTICAL_FACTOR

    # -- track creation and removal ---------------------------------------------------------------

    def _initial_state(self, obs: Observation, sigma: float) -> tuple[Array, Array]:
        model = self.settings.domains[obs.domain]
        p = np.zeros((4, 4))
        p[0, 0] = p[1, 1] = sigma * sigma
        v = np.zeros(2)
        if obs.speed_mps is not None and obs.course_deg is not None:
            _, vel, r = self._velocity([obs])
            v = vel[0]
            p[2:4, 2:4] = r[0]
        else:
            p[2, 2] = p[3, 3] = model.init_speed_sigma**2
        return v, p

    def _initiate(self, uid: str, obs: Observation, t: float) -> int:
        sigma = self._sigma(obs)
        v, p = self._initial_state(obs, sigma)
        meta = TrackMeta(uid, obs.identity, obs.domain, obs.source_time or obs.received_at)
        slot = self.table.add(meta, obs.lat, obs.lon, t, v, p, self.settings.domains[obs.domain])
        self._counts["tracks_created"] += 1
        self._describe(meta, obs, t, sigma)
        if self.initiator.on_hit(meta, 0.0, float(self.table.revisit[slot])):
            self._counts["confirmed"] += 1
        return slot

    def _new_anonymous(self, obs: Observation, t: float) -> int:
        self._anonymous += 1
        return self._initiate(self._anonymous_prefix + anonymous_uid(self._anonymous), obs, t)

    def _restart(self, slot: int, obs: Observation, t: float) -> None:
        table = self.table
        meta = table.get(slot)
        sigma = self._sigma(obs)
        v, p = self._initial_state(obs, sigma)
        table.lat[slot], table.lon[slot], table.t[slot] = obs.lat, obs.lon, t
        table.v[slot] = v
        table.p[slot] = p
        meta.reject_streak = 0
        meta.time = obs.source_time or obs.received_at
        self._describe(meta, obs, t, sigma)

    def _deletion(self, slot: int) -> TrackReport:
        table = self.table
        since = float(table.t[slot] - table.stale[slot])
        meta = table.get(slot)
        lat, lon = float(table.lat[slot]), float(table.lon[slot])
        table.remove(slot)
        return report_of(meta, lat, lon, math.nan, 0.0, 0.0, since, TrackStatus.DELETED)

    def _reports(self, touched: dict[int, None]) -> list[TrackReport]:
        table = self.table
        wanted = [
            slot
            for slot in touched
            if table.live[slot] and (self.settings.report_tentative or table.get(slot).status is TrackStatus.CONFIRMED)
        ]
        return table.reports(wanted)
