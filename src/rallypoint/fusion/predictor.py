"""Predictors: move track states forward in time, many tracks at once.

The state of a track is ``[east, north, v_east, v_north]`` in metres and m/s in the track's own
tangent plane (see ``geodesy``); covariances are 4x4. Arrays carry one row per track.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rallypoint.fusion.geodesy import Array


class Predictor(Protocol):
    """Predict states ``x`` (n,4) and covariances ``p`` (n,4,4) forward by ``dt`` (n,) seconds."""

    def predict(self, x: Array, p: Array, dt: Array, accel_sigma: Array) -> tuple[Array, Array]:
        """Return the predicted states and covariances (new arrays; the inputs are not changed)."""
        ...


class ConstantVelocity:
    """Nearly-constant-velocity model: white-noise acceleration of spectral density ``accel_sigma^2``.

    Written out per 2x2 block instead of ``F @ P @ F.T`` so a batch costs a handful of numpy
    operations whatever its size.
    """

    def predict(self, x: Array, p: Array, dt: Array, accel_sigma: Array) -> tuple[Array, Array]:
        """Return the predicted states and covariances (new arrays; the inputs are not changed)."""
        d = dt[:, None]
        xp = x.copy()
        xp[:, 0:2] += x[:, 2:4] * d
        d3 = dt[:, None, None]
        pp = p[:, 0:2, 0:2]
        pv = p[:, 0:2, 2:4]
        vp = p[:, 2:4, 0:2]
        vv = p[:, 2:4, 2:4]
        out = np.empty_like(p)
        out[:, 0:2, 0:2] = pp + d3 * (pv + vp) + d3 * d3 * vv
        out[:, 0:2, 2:4] = pv + d3 * vv
        out[:, 2:4, 0:2] = vp + d3 * vv
        out[:, 2:4, 2:4] = vv
        q = accel_sigma * accel_sigma
        q11 = q * dt**3 / 3.0
        q12 = q * dt**2 / 2.0
        q22 = q * dt
        for i in (0, 1):
            out[:, i, i] += q11
            out[:, i, i + 2] += q12
            out[:, i + 2, i] += q12
            out[:, i + 2, i + 2] += q22
        return xp, out
