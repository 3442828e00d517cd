"""Monte-Carlo impact footprint: perturb the wind per layer, the release moment, the descent rate
and the navigation, and see where the loads land relative to the PI.

The aircraft releases at the CARP computed from the forecast; each sample then falls through its
own (forecast + error) winds with its own descent rate. All samples are computed at once with
numpy, and a seed makes the footprint reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rallypoint.model.airdrop import Dispersion
from rallypoint.services.airdrop.ballistics import KT, Array, Fall
from rallypoint.services.airdrop.geometry import inside

CHI2_95_2DOF = 5.991464547107979  # 95 % quantile of chi-square with 2 degrees of freedom
MIN_ROD_FACTOR = 0.5  # a sample's descent rate never drops below half the nominal one
CHUNK = 20_000


@dataclass(frozen=True)
class Footprint:
    """Impact offsets from the PI (S, 2) and their statistics."""

    offsets: Array
    cep_m: float
    r95_m: float
    p_inside: float
    mean: Array  # (2,) east/north
    semi_major_m: float
    semi_minor_m: float
    orientation_deg: float


def impacts(fall: Fall, winds: Array, track: Array, ground_speed_mps: float, model: Dispersion) -> Array:
    """(S, 2) impact offsets from the PI for ``model.samples`` perturbed drops."""
    rng = np.random.default_rng(model.seed)
    nominal = fall.drift(winds)
    # Chunks bound the memory of the per-layer wind errors whatever the sample count.
    parts = [_chunk(rng, min(CHUNK, model.samples - done), fall, winds, nominal, track, ground_speed_mps, model)
             for done in range(0, model.samples, CHUNK)]
    return np.concatenate(parts)


def _chunk(rng: np.random.Generator, count: int, fall: Fall, winds: Array, nominal: Array, track: Array,
           ground_speed_mps: float, model: Dispersion) -> Array:
    layers = winds.shape[0]
    wind_error = rng.normal(0.0, model.wind_sigma_kt * KT, size=(count, layers, 2))
    rod_factor = np.maximum(1.0 + rng.normal(0.0, model.rod_sigma_frac, size=count), MIN_ROD_FACTOR)
    release = rng.normal(0.0, model.release_sigma_s, size=count)
    nav = rng.normal(0.0, model.nav_sigma_m, size=(count, 2))
    exposure = fall.exposure(rod_factor)  # (S, L)
    drift = np.einsum("sl,slk->sk", exposure, winds[None, :, :] + wind_error)
    return np.asarray(drift - nominal + release[:, None] * ground_speed_mps * track[None, :] + nav)


def summarize(offsets: Array, polygon: Array) -> Footprint:
    """CEP and R95 (median and 95th percentile radial miss from the PI), P(inside DZ), 95 % ellipse."""
    radial = np.hypot(offsets[:, 0], offsets[:, 1])
    cep, r95 = np.percentile(radial, [50.0, 95.0])
    p_inside = float(np.mean(inside(polygon, offsets[:, 0], offsets[:, 1])))
    mean = offsets.mean(axis=0)
    cov = np.cov(offsets, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, 0.0)
    major = vectors[:, 1]
    orientation = float(np.degrees(np.arctan2(major[0], major[1])) % 180.0)
    return Footprint(offsets=offsets, cep_m=float(cep), r95_m=float(r95), p_inside=p_inside, mean=mean,
                     semi_major_m=float(np.sqrt(CHI2_95_2DOF * values[1])),
                     semi_minor_m=float(np.sqrt(CHI2_95_2DOF * values[0])), orientation_deg=orientation)
