"""The fall of one load: density-corrected descent through wind layers (the CARP method's core).

The load leaves the aircraft at the drop altitude, loses ``VD`` metres while its canopy deploys
(``TFC`` seconds), then descends at ROD(h) = ROD_sl * sqrt(rho0 / rho(h)) from the stabilisation
altitude to the ground. Drift is the wind vector integrated over the whole time of fall, layer by
layer: the time spent in each layer weights that layer's wind (vectors, never averaged speeds).

Everything that does not depend on the wind is folded into one exposure time per layer, so a wind
profile (or ten thousand perturbed ones) turns into a drift with one matrix product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

KT = 0.514444  # m/s per knot
FT = 0.3048  # m per foot
RHO0 = 1.225  # ISA sea-level density, kg/m³
_ISA_LAPSE = 2.25577e-5  # per metre, troposphere
_ISA_EXP = 4.25588
SLICE_M = 5.0  # integration step; layer edges are always slice edges as well


def density(h_msl: Array | float) -> Array:
    """ISA troposphere air density (kg/m³) at ``h_msl`` metres above sea level."""
    return np.asarray(RHO0 * (1.0 - _ISA_LAPSE * np.asarray(h_msl, dtype=np.float64)) ** _ISA_EXP)


def rate_of_descent(rod_sl: float, h_msl: Array | float, corrected: bool) -> Array:
    """Rate of descent (m/s) at ``h_msl``: the sea-level rate, scaled for thinner air when ``corrected``."""
    h = np.asarray(h_msl, dtype=np.float64)
    if not corrected:
        return np.full(h.shape, rod_sl)
    return np.asarray(rod_sl * np.sqrt(RHO0 / density(h)))


def implied_k(rod_mps: float) -> float:
    """K of D = K x A x V (A hundreds of feet, V knots, D metres) for a load drifting h / ROD seconds."""
    return 100.0 * FT * KT / rod_mps


def wind_vectors(from_deg: Array, speed_kt: Array) -> Array:
    """(L, 2) east/north velocity (m/s) of winds given as direction FROM and speed in knots."""
    rad = np.radians(np.asarray(from_deg, dtype=np.float64))
    speed = np.asarray(speed_kt, dtype=np.float64) * KT
    # A wind from the north blows toward the south: the vector points at from + 180°.
    return np.stack([-speed * np.sin(rad), -speed * np.cos(rad)], axis=-1)


def layer_of(heights: Array, bottoms: Array, tops: Array) -> npt.NDArray[np.intp]:
    """Index of the layer holding each height; outside every layer, the nearest layer."""
    h = heights[:, None]
    gap = np.maximum(np.maximum(bottoms[None, :] - h, 0.0), h - tops[None, :])
    return np.asarray(np.argmin(gap, axis=1))


@dataclass(frozen=True)
class Fall:
    """Timing of one fall and each wind layer's share of it.

    ``descent_s[L]``: seconds of stabilised descent spent in layer L; ``band[L]``: fraction of the
    deployment band (drop altitude down to stabilisation) lying in layer L, which weights the
    ``tfc_s`` seconds of deployment.
    """

    drop_altitude_m: float
    stabilization_altitude_m: float
    tfc_s: float
    descent_s: Array
    band: Array

    @property
    def time_of_fall_s(self) -> float:
        """Total time from exit to impact."""
        return self.tfc_s + float(self.descent_s.sum())

    def exposure(self, rod_factor: Array | float = 1.0) -> Array:
        """Seconds each layer's wind acts on the load, (L,) or (S, L) for per-sample ROD factors."""
        factor = np.asarray(rod_factor, dtype=np.float64)
        if factor.ndim == 0:
            return np.asarray(self.descent_s / factor + self.tfc_s * self.band)
        return np.asarray(self.descent_s[None, :] / factor[:, None] + self.tfc_s * self.band[None, :])

    def drift(self, winds: Array) -> Array:
        """Drift (east, north) metres under the (L, 2) wind vectors."""
        return np.asarray(self.exposure() @ winds)


def fall(
    *,
    altitude_agl_m: float,
    elevation_m: float,
    rod_sl_mps: float,
    vd_m: float,
    tfc_s: float,
    bottoms: Array,
    tops: Array,
    density_correction: bool,
) -> Fall:
    """Integrate the descent from ``altitude_agl_m - vd_m`` to the ground in thin slices.

    ``bottoms``/``tops`` are the wind layers (metres above the DZ, not overlapping, at least one).
    """
    stab = altitude_agl_m - vd_m
    slices = max(1, math.ceil(altitude_agl_m / SLICE_M))
    inner = np.concatenate([bottoms, tops, [stab]])
    inner = inner[(inner > 0) & (inner < altitude_agl_m)]
    edges = np.unique(np.concatenate([np.linspace(0.0, altitude_agl_m, slices + 1), inner]))
    lower, upper = edges[:-1], edges[1:]
    mids = (lower + upper) / 2.0
    dh = upper - lower
    layer = layer_of(mids, bottoms, tops)
    count = len(bottoms)
    descending = upper <= stab + 1e-9
    rod = rate_of_descent(rod_sl_mps, elevation_m + mids[descending], density_correction)
    descent = np.bincount(layer[descending], weights=dh[descending] / rod, minlength=count)
    band: Array = np.zeros(count)
    if vd_m > 0:
        deploying = ~descending
        band = np.bincount(layer[deploying], weights=dh[deploying] / vd_m, minlength=count).astype(np.float64)
    else:
        band[layer_of(np.array([altitude_agl_m]), bottoms, tops)[0]] = 1.0
    return Fall(drop_altitude_m=altitude_agl_m, stabilization_altitude_m=stab, tfc_s=tfc_s,
                descent_s=np.asarray(descent, dtype=np.float64), band=np.asarray(band, dtype=np.float64))
