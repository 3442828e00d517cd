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
from datetime import datetime

import numpy as np

from rallypoint.fusion.associator import Associator, GlobalNearestNeighbour
from rallypoint.fusion.filtering import (
    Batch,
    Measurements,
    Outcome,
    altitude_sigma,
    epoch,
    filter_step,
    plausible_extras,
    sanitised,
)
from rallypoint.fusion.hypothesiser import Hypothesiser, MahalanobisHypothesiser
from rallypoint.fusion.identity import anonymous_uid, uid_for
from rallypoint.fusion.imm import InteractingMultipleModel
from rallypoint.fusion.lifecycle import Deleter, Initiator, MOfNInitiator, StalenessDeleter
from rallypoint.fusion.merges import Merges
from rallypoint.fusion.pairing import MergeProposal
from rallypoint.fusion.predictor import ConstantVelocity, Predictor
from rallypoint.fusion.settings import FusionSettings
from rallypoint.fusion.table import TrackMeta, TrackTable
from rallypoint.fusion.updater import KalmanUpdater, Updater
from rallypoint.model.track import Domain, Identity, Observation, TrackReport, TrackStatus

_UID_CACHE_LIMIT = 100_000  # identities remembered with their uid (cleared, not evicted, past this)


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
        hypothesiser: Hypothesiser | None = None,
        associator: Associator | None = None,
        anonymous_prefix: str = "",
    ) -> None:
        self.settings = s = settings or FusionSettings()
        self.predictor = predictor or ConstantVelocity()
        self.updater = updater or KalmanUpdater()
        self.initiator = initiator or MOfNInitiator(s.confirm_hits, s.confirm_window, s.identified_confirm_hits)
        self.deleter = deleter or StalenessDeleter(s.confirm_hits, s.confirm_window)
        self.table = TrackTable()
        self.imm = InteractingMultipleModel(self.predictor, s.imm_accel_sigma, s.imm_sojourn_s) if s.air_imm else None
        self.measurements = Measurements(s)
        self._counts: Counter[str] = Counter()
        self._anonymous = 0
        self._anonymous_prefix = anonymous_prefix
        self._uid_cache: dict[Identity, str] = {}
        self.hypothesiser = hypothesiser or MahalanobisHypothesiser(
            self.predictor, s.gate_chi2, s.association_radius_m, s.late_window_s
        )
        self.associator = associator or GlobalNearestNeighbour()
        self.merges = Merges(s, self.predictor, self.table)

    # -- public ---------------------------------------------------------------------------------

    def update(self, now: datetime, obs: Observation) -> list[TrackReport]:
        """Fold one observation in; returns the reports of the tracks it changed."""
        return self.update_many(now, (obs,))

    def update_many(self, now: datetime, observations: Iterable[Observation]) -> list[TrackReport]:
        """Fold a batch in (cheaper per observation than one by one); one report per changed track."""
        touched: dict[int, None] = {}
        identified: list[tuple[Observation, float]] = []  # with the time of each, epoch seconds
        anonymous: list[tuple[Observation, float]] = []
        now_s = epoch(now)
        latest = now_s + self.settings.max_future_s
        seen: datetime | None = None  # a batch from one read usually shares one receive time
        seen_t = 0.0
        for obs in observations:
            if not (-90.0 <= obs.lat <= 90.0 and -180.0 <= obs.lon <= 180.0):
                self._counts["invalid_position"] += 1
                continue
            when = obs.source_time or obs.received_at
            if when is not seen:
                seen, seen_t = when, epoch(when)
            t = seen_t
            if t > latest or not plausible_extras(obs):
                obs, reasons = sanitised(obs, latest)
                self._counts.update(reasons)
                t = epoch(obs.source_time or obs.received_at)
            (identified if obs.identity is not None else anonymous).append((obs, t))
        self._counts["observations"] += len(identified) + len(anonymous)
        deleted: list[TrackReport] = []
        if identified:
            self._apply_identified(identified, touched)
        if anonymous:
            self._apply_anonymous(anonymous, touched)
        if self.merges.due(now_s):
            deleted = self.merges.pair_up(now_s, touched)
        return deleted + self._reports(touched)

    def expire(self, now: datetime) -> list[TrackReport]:
        """Delete the tracks that are stale at ``now``; returns DELETED reports of those that were shown."""
        doomed = self.deleter.doomed(self.table, epoch(now))
        out: list[TrackReport] = []
        for slot in doomed.tolist():
            shown = self.table.get(slot).status is TrackStatus.CONFIRMED
            report = self.table.delete(slot)
            self._counts["deleted_stale" if shown else "deleted_tentative"] += 1
            if shown or self.settings.report_tentative:
                out.append(report)
        return out

    def statistics(self) -> Mapping[str, int]:
        """Counts per reason (observations, duplicate, out_of_order, implausible_jump, ...) and track counts."""
        out = dict(self._counts)
        out.update(self.merges.counts)
        status = Counter(m.status.value for m in self.table.meta if m is not None)
        out["tracks"] = len(self.table)
        out["tracks_confirmed"] = status.get(TrackStatus.CONFIRMED.value, 0)
        out["tracks_tentative"] = status.get(TrackStatus.TENTATIVE.value, 0)
        return out

    def tracks(self) -> list[TrackReport]:
        """Reports of every live track (tentative ones included), e.g. for a late joiner or a test."""
        return self.table.reports(self.table.live_slots().tolist())

    def proposals(self) -> list[MergeProposal]:
        """Open merge proposals (two identities that move together), oldest first."""
        return self.merges.proposals()

    def accept_proposal(self, proposal_id: str) -> list[TrackReport]:
        """Merge the proposal's secondary identity into its primary; returns the changed reports.

        Raises ``KeyError`` for an unknown (or already decided) proposal.
        """
        proposal = self.merges.accept(proposal_id)
        return self.merge_identities(proposal.primary_identity, proposal.secondary_identity)

    def reject_proposal(self, proposal_id: str) -> None:
        """Never propose this pair again. Raises ``KeyError`` for an unknown proposal."""
        self.merges.reject(proposal_id)

    def merge_identities(self, primary: Identity, secondary: Identity) -> list[TrackReport]:
        """Reports of ``secondary`` update the track of ``primary`` from now on (also to restore an
        accepted merge after a restart). Returns the secondary's deletion and the primary's report."""
        out, kept = self.merges.merge(primary, secondary)
        if kept is not None:
            out.extend(self._reports({kept: None}))
        return out

    # -- identified observations -----------------------------------------------------------------

    def _apply_identified(self, observations: list[tuple[Observation, float]], touched: dict[int, None]) -> None:
        rounds: list[tuple[list[int], list[Observation], list[float], list[float]]] = []
        round_of: dict[int, int] = {}
        pending: set[tuple[int, str, float]] = set()  # (slot, source, time) already in this batch
        table = self.table
        uid_cache = self._uid_cache
        aliases = self.merges.aliases
        by_uid = table.by_uid
        metas = table.meta
        sigma = self.measurements.sigma
        # Without its own accuracy an observation's sigma depends only on its source and identity kind.
        sigmas_of: dict[tuple[str, object], float] = {}
        for obs, t in observations:
            assert obs.identity is not None
            identity = obs.identity
            uid = uid_cache.get(identity)
            if uid is None:
                if len(uid_cache) > _UID_CACHE_LIMIT:
                    uid_cache.clear()
                uid = uid_cache[identity] = uid_for(identity)
            if uid in aliases:
                identity = aliases[uid]
                uid = uid_for(identity)
            when = obs.source_time
            slot = by_uid.get(uid)
            if slot is None:
                touched[self._initiate(uid, identity, obs, t)] = None
                continue
            if when is not None:
                key = (slot, obs.source, t)
                if key in pending or metas[slot].sources.get(obs.source) == t:  # type: ignore[union-attr]
                    self._counts["duplicate"] += 1
                    continue
                pending.add(key)
            r = round_of.get(slot, 0)
            round_of[slot] = r + 1
            if r == len(rounds):
                rounds.append(([], [], [], []))
            slots, batch, times, sigmas = rounds[r]
            slots.append(slot)
            batch.append(obs)
            times.append(t)
            if obs.ce_m:
                sigmas.append(sigma(obs))
            else:
                noise_key = (obs.source, obs.identity.kind)
                sig = sigmas_of.get(noise_key)
                if sig is None:
                    sig = sigmas_of[noise_key] = sigma(obs)
                sigmas.append(sig)
        for slots, batch, times, sigmas in rounds:
            self._update(Batch(slots, batch, times, sigmas), touched)

    @staticmethod
    def _duplicate(meta: TrackMeta, obs: Observation, t: float) -> bool:
        """Same source, same source time as the last report of that source used by the track."""
        return obs.source_time is not None and meta.sources.get(obs.source) == t

    # -- identity-less observations ---------------------------------------------------------------

    def _apply_anonymous(self, observations: list[tuple[Observation, float]], touched: dict[int, None]) -> None:
        """Associate per source (one source reports each object at most once at a time), then update."""
        by_source: dict[str, list[tuple[Observation, float]]] = {}
        for item in observations:
            by_source.setdefault(item[0].source, []).append(item)
        for timed in by_source.values():
            group = [o for o, _ in timed]
            times = [t for _, t in timed]
            sigmas = [self.measurements.sigma(o) for o in group]
            lat = np.fromiter((o.lat for o in group), dtype=float, count=len(group))
            lon = np.fromiter((o.lon for o in group), dtype=float, count=len(group))
            hypotheses = self.hypothesiser.hypothesise(
                self.table, lat, lon, np.asarray(times), np.asarray(sigmas), [o.domain for o in group]
            )
            pairs = self.associator.associate(len(group), hypotheses)
            assigned = {i for i, _ in pairs}
            slots: list[int] = []
            chosen: list[int] = []
            for i, slot in pairs:
                if self._duplicate(self.table.get(slot), group[i], times[i]):
                    self._counts["duplicate"] += 1
                else:
                    slots.append(slot)
                    chosen.append(i)
            self._counts["associated"] += len(pairs)
            if slots:
                self._update(
                    Batch(slots, [group[i] for i in chosen], [times[i] for i in chosen], [sigmas[i] for i in chosen]),
                    touched,
                )
            for i, obs in enumerate(group):
                if i not in assigned:
                    touched[self._new_anonymous(obs, times[i])] = None

    # -- filtering --------------------------------------------------------------------------------

    def _update(self, b: Batch, touched: dict[int, None]) -> None:
        outcome = filter_step(self.table, b, self.predictor, self.updater, self.measurements, self.imm)
        self._bookkeeping(b, outcome, touched)

    def _bookkeeping(self, b: Batch, outcome: Outcome, touched: dict[int, None]) -> None:
        table = self.table
        counts = self._counts
        sigmas = b.sigma.tolist()
        times = b.t.tolist()
        too_old, jump, dt = outcome.too_old, outcome.jump, outcome.dt
        updates = late = 0
        confirmed = TrackStatus.CONFIRMED
        with_alt: list[TrackMeta] = []  # their altitude is read back column-wise after the loop
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
                late += 1
            else:
                meta.time = obs.source_time or obs.received_at
            updates += 1
            if self._describe(meta, obs, times[i], sigmas[i], read_alt=False):
                with_alt.append(meta)
            if meta.status is not confirmed:
                self._hit(meta, slot, dt[i])
            touched[slot] = None
        counts["updates"] += updates
        if late:
            counts["late_applied"] += late
        if with_alt:
            idx = np.fromiter((m.slot for m in with_alt), dtype=np.intp, count=len(with_alt))
            alts = table.alt[idx].tolist()
            alt_sigmas = np.sqrt(table.pz[idx, 0, 0]).tolist()
            for meta, alt, alt_sigma in zip(with_alt, alts, alt_sigmas, strict=True):
                meta.alt_m, meta.alt_sigma_m = alt, alt_sigma

    def _describe(self, meta: TrackMeta, obs: Observation, t: float, sigma: float, *, read_alt: bool = True) -> bool:
        """Copy what the observation says besides the position onto the track. True when it reports
        an altitude; without ``read_alt`` the caller copies the altitude filter's estimate itself."""
        sources = meta.sources
        last = sources.get(obs.source)
        if last is None:
            sources[obs.source] = t
            meta.names = None
        elif t > last:
            sources[obs.source] = t
        if obs.name:
            meta.name = obs.name
        # The category refines the type (AIS ship type, ADS-B emitter category, a CoT source's own
        # type): only the track's own identity says it. A radar-like report's ``a-u-S`` joining a
        # vessel, or a merged-in tracker's symbol, would otherwise overwrite the ship type.
        if obs.category and (meta.identity is None or obs.identity == meta.identity):
            meta.category = obs.category
        if meta.domain is Domain.UNKNOWN and obs.domain is not Domain.UNKNOWN:
            self._settle_domain(meta, obs.domain)
        if obs.alt_m is None:
            return False
        table, slot = self.table, meta.slot
        if not table.has_alt[slot]:
            table.start_altitude(slot, obs.alt_m, altitude_sigma(sigma), t)
        if read_alt:
            meta.alt_m = float(table.alt[slot])
            meta.alt_sigma_m = math.sqrt(float(table.pz[slot, 0, 0]))
        return True

    def _settle_domain(self, meta: TrackMeta, domain: Domain) -> None:
        """A track started without a domain takes the first one a report states, with its motion model."""
        table, slot, model = self.table, meta.slot, self.settings.domains[domain]
        meta.domain = domain
        table.accel[slot], table.stale[slot] = model.accel_sigma, model.stale_s
        table.revisit[slot], table.max_speed[slot] = model.revisit_s, model.max_speed_mps
        if self.imm is not None and domain is Domain.AIR:
            table.start_imm(slot, self.settings.imm_prior)
            table.accel[slot] = self.imm.gate_accel

    # -- track creation and removal ---------------------------------------------------------------

    def _initiate(self, uid: str, identity: Identity | None, obs: Observation, t: float) -> int:
        sigma = self.measurements.sigma(obs)
        v, p = self.measurements.initial_state(obs, sigma)
        meta = TrackMeta(uid, identity, obs.domain, obs.source_time or obs.received_at)
        slot = self.table.add(meta, obs.lat, obs.lon, t, v, p, self.settings.domains[obs.domain])
        if self.imm is not None and obs.domain is Domain.AIR:
            self.table.start_imm(slot, self.settings.imm_prior)
            self.table.accel[slot] = self.imm.gate_accel
        self._counts["tracks_created"] += 1
        self._describe(meta, obs, t, sigma)
        self._hit(meta, slot, 0.0)
        return slot

    def _hit(self, meta: TrackMeta, slot: int, gap_s: float) -> None:
        if self.initiator.on_hit(meta, gap_s, float(self.table.revisit[slot])):
            self.table.confirmed[slot] = True
            self._counts["confirmed"] += 1

    def _new_anonymous(self, obs: Observation, t: float) -> int:
        self._anonymous += 1
        return self._initiate(self._anonymous_prefix + anonymous_uid(self._anonymous), None, obs, t)

    def _restart(self, slot: int, obs: Observation, t: float) -> None:
        table = self.table
        meta = table.get(slot)
        sigma = self.measurements.sigma(obs)
        v, p = self.measurements.initial_state(obs, sigma)
        table.lat[slot], table.lon[slot], table.t[slot] = obs.lat, obs.lon, t
        table.v[slot] = v
        table.p[slot] = p
        if table.imm[slot]:
            table.start_imm(slot, self.settings.imm_prior)
        meta.reject_streak = 0
        meta.time = obs.source_time or obs.received_at
        self._describe(meta, obs, t, sigma)

    def _reports(self, touched: dict[int, None]) -> list[TrackReport]:
        table = self.table
        wanted = [
            slot for slot in touched if table.live[slot] and (self.settings.report_tentative or table.confirmed[slot])
        ]
        return table.reports(wanted)
