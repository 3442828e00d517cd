"""Hypothesiser: which tracks could have produced each identity-less observation, and at what cost.

Candidates come from a k-d tree of track positions (within ``association_radius_m``), then each
(observation, track) pair is predicted to the observation's time and scored by the squared
Mahalanobis distance of the innovation; pairs beyond the chi-square gate are no hypotheses. The
cost handed to the associator is ``d^2 + ln det S`` (the negative log-likelihood up to a constant),
so a precise track is preferred over a vague one at the same distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rallypoint.fusion.geodesy import Array, Index, to_enu
from rallypoint.fusion.predictor import Predictor
from rallypoint.fusion.table import TrackTable
from rallypoint.fusion.updater import inverse_2x2
from rallypoint.model.track import Domain

_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Hypotheses:
    """Gated (observation, track) pairs: observation indexes, track slots, distances and costs."""

    observation: Index
    slot: Index
    d2: Array
    cost: Array


def unit_vectors(lat: Array, lon: Array) -> Array:
    """Points on a sphere of the Earth's mean radius, for k-d tree neighbour searches (metres)."""
    la = np.radians(lat)
    lo = np.radians(lon)
    c = np.cos(la)
    return _EARTH_RADIUS_M * np.stack([c * np.cos(lo), c * np.sin(lo), np.sin(la)], axis=1)


class Hypothesiser(Protocol):
    """Scores observations against the tracks of a table."""

    def hypothesise(
        self, table: TrackTable, lat: Array, lon: Array, t: Array, sigma: Array, domains: list[Domain]
    ) -> Hypotheses:
        """Gated hypotheses for observations at ``lat``/``lon``/``t`` with position noise ``sigma``."""
        ...


class MahalanobisHypothesiser:
    """Chi-square gate on the Mahalanobis distance of the predicted position (2 degrees of freedom)."""

    def __init__(self, predictor: Predictor, gate_chi2: float, radius_m: float, late_window_s: float) -> None:
        self.predictor = predictor
        self.gate_chi2 = gate_chi2
        self.radius_m = radius_m
        self.late_window_s = late_window_s

    def hypothesise(
        self, table: TrackTable, lat: Array, lon: Array, t: Array, sigma: Array, domains: list[Domain]
    ) -> Hypotheses:
        """Gated hypotheses for observations at ``lat``/``lon``/``t`` with position noise ``sigma``."""
        live = table.live_slots()
        empty = Hypotheses(np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0), np.empty(0))
        if live.size == 0 or lat.size == 0:
            return empty
        from scipy.spatial import cKDTree  # here: scipy costs ~50 MB at start (see fusion/associator.py)

        tree = cKDTree(unit_vectors(table.lat[live], table.lon[live]))
        near = tree.query_ball_point(unit_vectors(lat, lon), r=self.radius_m)
        obs_idx: list[int] = []
        slots: list[int] = []
        live_list = live.tolist()
        for i, found in enumerate(near):
            domain = domains[i]
            for j in found:
                slot = live_list[j]
                track_domain = table.get(slot).domain
                if domain is Domain.UNKNOWN or track_domain is Domain.UNKNOWN or track_domain is domain:
                    obs_idx.append(i)
                    slots.append(slot)
        if not slots:
            return empty
        oi = np.asarray(obs_idx, dtype=np.intp)
        si = np.asarray(slots, dtype=np.intp)
        dt = t[oi] - table.t[si]
        keep = dt >= -self.late_window_s
        oi, si, dt = oi[keep], si[keep], dt[keep]
        x = np.zeros((si.size, 4))
        x[:, 2:4] = table.v[si]
        xp, pp = self.predictor.predict(x, table.p[si], np.maximum(dt, 0.0), table.accel[si])
        lag = np.maximum(-dt, 0.0)
        ze, zn = to_enu(table.lat[si], table.lon[si], lat[oi], lon[oi])
        y = np.stack([ze + xp[:, 2] * lag - xp[:, 0], zn + xp[:, 3] * lag - xp[:, 1]], axis=1)
        s = pp[:, 0:2, 0:2].copy()
        var = sigma[oi] ** 2 + lag**2 * np.maximum(pp[:, 2, 2], pp[:, 3, 3])
        s[:, 0, 0] += var
        s[:, 1, 1] += var
        s_inv = inverse_2x2(s)
        d2 = np.einsum("ni,nij,nj->n", y, s_inv, y)
        gated = d2 <= self.gate_chi2
        det = s[:, 0, 0] * s[:, 1, 1] - s[:, 0, 1] * s[:, 1, 0]
        cost = d2 + np.log(det)
        return Hypotheses(oi[gated], si[gated], d2[gated], cost[gated])
