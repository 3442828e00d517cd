"""Where the tracks live: numeric state in preallocated numpy arrays (one row per track slot), the rest
in a small per-track record. Predict and update read and write whole columns at once."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from rallypoint.fusion.geodesy import Array, Index
from rallypoint.fusion.settings import DomainModel
from rallypoint.model.track import Domain, Identity, TrackReport, TrackStatus


class TrackMeta:
    """What a track knows besides its numbers (mutable, owned by the tracker)."""

    __slots__ = (
        "alt_m",
        "alt_sigma_m",
        "category",
        "domain",
        "hits",
        "identity",
        "misses",
        "name",
        "names",
        "reject_streak",
        "slot",
        "sources",
        "status",
        "time",
        "uid",
    )

    def __init__(self, uid: str, identity: Identity | None, domain: Domain, time: datetime) -> None:
        self.uid = uid
        self.identity = identity
        self.domain = domain
        self.status = TrackStatus.TENTATIVE
        self.name: str | None = None
        self.category: str | None = None
        self.alt_m: float | None = None
        self.alt_sigma_m: float | None = None
        self.hits = 0
        self.misses = 0
        self.reject_streak = 0
        self.slot = -1
        self.time = time  # the time of the estimate, as the source stated it
        # source name -> time (epoch seconds) of its latest report used by this track
        self.sources: dict[str, float] = {}
        self.names: tuple[str, ...] | None = None  # sorted source names, while the set is unchanged


class TrackTable:
    """Struct-of-arrays storage for tracks, growing by doubling; slots of deleted tracks are reused."""

    def __init__(self, capacity: int = 256) -> None:
        self.lat = np.zeros(capacity)
        self.lon = np.zeros(capacity)
        self.t = np.zeros(capacity)  # epoch seconds of the estimate
        self.v = np.zeros((capacity, 2))  # east, north m/s
        self.p = np.zeros((capacity, 4, 4))
        self.accel = np.zeros(capacity)  # the domain's process noise, per track
        self.stale = np.zeros(capacity)  # the domain's stale time, per track
        self.revisit = np.ones(capacity)  # the domain's expected report interval, per track
        self.max_speed = np.zeros(capacity)  # the domain's plausible top speed, per track
        self.live = np.zeros(capacity, dtype=bool)
        self.confirmed = np.zeros(capacity, dtype=bool)  # mirrors meta.status for column-wise use
        # Altitude: a constant-climb filter of its own (metres, m/s, covariance), where reported.
        self.has_alt = np.zeros(capacity, dtype=bool)
        self.alt = np.zeros(capacity)
        self.climb = np.zeros(capacity)
        self.pz = np.zeros((capacity, 2, 2))
        self.alt_t = np.zeros(capacity)
        # Tracks filtered by the IMM (aircraft): its two models' states, covariances, probabilities.
        self.imm = np.zeros(capacity, dtype=bool)
        self.imm_x = np.zeros((capacity, 2, 4))
        self.imm_p = np.zeros((capacity, 2, 4, 4))
        self.imm_mu = np.zeros((capacity, 2))
        self.meta: list[TrackMeta | None] = [None] * capacity
        self.by_uid: dict[str, int] = {}
        self._free: list[int] = list(range(capacity - 1, -1, -1))

    def __len__(self) -> int:
        return len(self.by_uid)

    def _grow(self) -> None:
        old = self.lat.shape[0]
        new = old * 2

        def grow(a: Array) -> Array:
            out = np.zeros((new, *a.shape[1:]), dtype=a.dtype)
            out[:old] = a
            return out

        self.lat, self.lon, self.t = grow(self.lat), grow(self.lon), grow(self.t)
        self.v, self.p = grow(self.v), grow(self.p)
        self.accel, self.stale, self.live = grow(self.accel), grow(self.stale), grow(self.live)
        self.confirmed = grow(self.confirmed)
        self.imm, self.imm_x, self.imm_p, self.imm_mu = (
            grow(self.imm),
            grow(self.imm_x),
            grow(self.imm_p),
            grow(self.imm_mu),
        )
        self.has_alt, self.alt, self.climb = grow(self.has_alt), grow(self.alt), grow(self.climb)
        self.pz, self.alt_t = grow(self.pz), grow(self.alt_t)
        self.revisit, self.max_speed = grow(self.revisit), grow(self.max_speed)
        self.meta.extend([None] * old)
        self._free.extend(range(new - 1, old - 1, -1))

    def add(self, meta: TrackMeta, lat: float, lon: float, t: float, v: Array, p: Array, model: DomainModel) -> int:
        """Store a new track; returns its slot."""
        if not self._free:
            self._grow()
        slot = self._free.pop()
        self.lat[slot], self.lon[slot], self.t[slot] = lat, lon, t
        self.v[slot] = v
        self.p[slot] = p
        self.accel[slot], self.stale[slot], self.revisit[slot] = model.accel_sigma, model.stale_s, model.revisit_s
        self.max_speed[slot] = model.max_speed_mps
        self.live[slot] = True
        self.confirmed[slot] = False
        self.imm[slot] = False
        self.has_alt[slot] = False
        self.meta[slot] = meta
        meta.slot = slot
        self.by_uid[meta.uid] = slot
        return slot

    def start_altitude(self, slot: int, alt: float, sigma: float, t: float) -> None:
        """Start the altitude filter of ``slot`` at a reported altitude (climb unknown: 0 +- 10 m/s)."""
        self.has_alt[slot] = True
        self.alt[slot], self.climb[slot], self.alt_t[slot] = alt, 0.0, t
        self.pz[slot] = ((sigma * sigma, 0.0), (0.0, 100.0))

    def start_imm(self, slot: int, prior: float) -> None:
        """Filter ``slot`` with the IMM from now on, both models at the track's current state."""
        self.imm[slot] = True
        self.imm_x[slot] = 0.0
        self.imm_x[slot, :, 2:4] = self.v[slot]
        self.imm_p[slot] = self.p[slot]
        self.imm_mu[slot] = (prior, 1.0 - prior)

    def fold(self, gone: int, kept: int) -> None:
        """Give the kept track what the other knew besides its numbers (sources, name, category)."""
        a, b = self.get(gone), self.get(kept)
        for source, t in a.sources.items():
            b.sources[source] = max(t, b.sources.get(source, t))
        b.names = None
        b.name = b.name or a.name
        b.category = b.category or a.category
        if b.alt_m is None and a.alt_m is not None:
            b.alt_m, b.alt_sigma_m = a.alt_m, a.alt_sigma_m
            self.has_alt[kept], self.alt[kept], self.climb[kept] = True, self.alt[gone], self.climb[gone]
            self.pz[kept], self.alt_t[kept] = self.pz[gone], self.alt_t[gone]

    def remove(self, slot: int) -> TrackMeta:
        """Forget the track in ``slot``; returns its record (with status DELETED)."""
        meta = self.meta[slot]
        assert meta is not None
        meta.status = TrackStatus.DELETED
        self.live[slot] = False
        self.confirmed[slot] = False
        self.meta[slot] = None
        del self.by_uid[meta.uid]
        self._free.append(slot)
        return meta

    def delete(self, slot: int) -> TrackReport:
        """Forget the track in ``slot``; returns its DELETED report at its last estimated position."""
        since = float(self.t[slot] - self.stale[slot])
        meta = self.get(slot)
        lat, lon = float(self.lat[slot]), float(self.lon[slot])
        self.remove(slot)
        return report_of(meta, lat, lon, None, None, None, since, TrackStatus.DELETED)

    def get(self, slot: int) -> TrackMeta:
        """The record of a live slot."""
        meta = self.meta[slot]
        assert meta is not None
        return meta

    def live_slots(self) -> Index:
        """Slots of all live tracks, as an integer array."""
        return np.flatnonzero(self.live)

    def reports(self, slots: list[int], stale_window: float | None = None) -> list[TrackReport]:
        """Track reports for ``slots`` (live ones), reading the numbers column-wise once."""
        if not slots:
            return []
        idx = np.asarray(slots)
        lat = self.lat[idx].tolist()
        lon = self.lon[idx].tolist()
        ve = self.v[idx, 0]
        vn = self.v[idx, 1]
        speed = np.hypot(ve, vn).tolist()
        course = (np.degrees(np.arctan2(ve, vn)) % 360.0).tolist()
        ce = position_sigma(self.p[idx]).tolist()
        t = self.t[idx].tolist()
        stale = self.stale[idx].tolist()
        out: list[TrackReport] = []
        for i, slot in enumerate(slots):
            meta = self.get(slot)
            out.append(report_of(meta, lat[i], lon[i], course[i], speed[i], ce[i], t[i] - stale[i]))
        return out


def position_sigma(p: Array) -> Array:
    """1-sigma horizontal error (metres): the square root of the larger eigenvalue of each 2x2 position block.

    The worst axis rather than the mean, so a long, thin uncertainty (a bearing-only-like update or a
    fast track between reports) is not shown as more precise than it is along that axis.
    """
    a = p[:, 0, 0]
    d = p[:, 1, 1]
    b = p[:, 0, 1]
    half_trace = 0.5 * (a + d)
    root = np.sqrt(np.maximum(0.25 * (a - d) ** 2 + b * b, 0.0))
    return np.sqrt(np.maximum(half_trace + root, 0.0))


def report_of(
    meta: TrackMeta,
    lat: float,
    lon: float,
    course: float | None,
    speed: float | None,
    ce: float | None,
    sources_since: float,
    status: TrackStatus | None = None,
) -> TrackReport:
    """One track's report; ``sources`` are those that contributed since ``sources_since`` (epoch s)."""
    if len(meta.sources) > 1 and min(meta.sources.values()) < sources_since:
        # A source that has not contributed within the stale time no longer counts (and is forgotten).
        for name in [s for s, ts in meta.sources.items() if ts < sources_since]:
            del meta.sources[name]
        meta.names = None
    sources = meta.names
    if sources is None:
        sources = meta.names = tuple(sorted(meta.sources))
    return TrackReport(
        uid=meta.uid,
        time=meta.time,
        status=status or meta.status,
        domain=meta.domain,
        lat=lat,
        lon=lon,
        identity=meta.identity,
        name=meta.name,
        alt_m=meta.alt_m,
        course_deg=course if speed and course is not None and math.isfinite(course) else None,
        speed_mps=speed,
        ce_m=ce,
        le_m=meta.alt_sigma_m if meta.alt_m is not None else None,  # from the altitude filter
        category=meta.category,
        sources=sources,
        fused=len(sources) > 1,
    )
