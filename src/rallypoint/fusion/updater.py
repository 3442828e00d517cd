"""Updaters: fold measurements into predicted states, many tracks at once (Kalman filter).

A measurement is a position in the track's tangent plane, optionally with a velocity. Batches are
split by measurement size so each is a fixed-shape numpy computation.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from rallypoint.fusion.geodesy import Array


class Updater(Protocol):
    """Update predicted ``x`` (n,4), ``p`` (n,4,4) with measurements ``z`` (n,k) of noise ``r`` (n,k,k)."""

    def update(self, x: Array, p: Array, z: Array, r: Array) -> tuple[Array, Array]:
        """Return updated states and covariances; ``k`` is 2 (position) or 4 (position and velocity)."""
        ...


def inverse_2x2(s: Array) -> Array:
    """Inverse of a stack of symmetric positive-definite 2x2 matrices (closed form, no LAPACK call)."""
    a = s[:, 0, 0]
    b = s[:, 0, 1]
    c = s[:, 1, 0]
    d = s[:, 1, 1]
    det = a * d - b * c
    inv = np.empty_like(s)
    inv[:, 0, 0] = d / det
    inv[:, 0, 1] = -b / det
    inv[:, 1, 0] = -c / det
    inv[:, 1, 1] = a / det
    return inv


def inverse_4x4(s: Array) -> tuple[Array, Array]:
    """Inverse and determinant of a stack of symmetric positive-definite 4x4 matrices.

    By 2x2 blocks (the inverse of the position block and of its Schur complement) in a few numpy
    operations per stack: LAPACK's ``inv`` and ``det`` loop over the matrices one call each.
    """
    a, b, d = s[:, 0:2, 0:2], s[:, 0:2, 2:4], s[:, 2:4, 2:4]
    a_inv = inverse_2x2(a)
    a_inv_b = a_inv @ b
    schur = d - np.swapaxes(b, 1, 2) @ a_inv_b
    schur_inv = inverse_2x2(schur)
    upper_right = -(a_inv_b @ schur_inv)
    out = np.empty_like(s)
    out[:, 0:2, 0:2] = a_inv - upper_right @ np.swapaxes(a_inv_b, 1, 2)
    out[:, 0:2, 2:4] = upper_right
    out[:, 2:4, 0:2] = np.swapaxes(upper_right, 1, 2)
    out[:, 2:4, 2:4] = schur_inv
    det = (a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]) * (
        schur[:, 0, 0] * schur[:, 1, 1] - schur[:, 0, 1] * schur[:, 1, 0]
    )
    return out, det


class KalmanUpdater:
    """The linear Kalman update with ``H = [I 0]`` (position) or ``H = I`` (position and velocity).

    Uses ``P - K S K^T`` and re-symmetrises, which stays positive definite for the well-conditioned
    covariances the tracker keeps (measurement sigmas are floored at ``min_sigma_m``).
    """

    def update(self, x: Array, p: Array, z: Array, r: Array) -> tuple[Array, Array]:
        """Return updated states and covariances; ``k`` is 2 (position) or 4 (position and velocity)."""
        k = z.shape[1]
        s = p[:, :k, :k] + r
        s_inv = inverse_2x2(s) if k == 2 else inverse_4x4(s)[0]
        gain = p[:, :, :k] @ s_inv
        innovation = z - x[:, :k]
        xu = x + np.einsum("nij,nj->ni", gain, innovation)
        pu = p - gain @ s @ np.swapaxes(gain, 1, 2)
        pu = 0.5 * (pu + np.swapaxes(pu, 1, 2))
        return xu, pu


def velocity_noise(speed: Array, course_deg: Array, speed_sigma: Array, course_sigma_deg: Array) -> Array:
    """Covariance (n,2,2) of an east/north velocity given as speed and course with their sigmas.

    Along the course the error is the speed's; across it, speed times the course error (floored at
    the speed sigma, so a stationary object's meaningless course does not claim precision).
    """
    along = speed_sigma**2
    across = np.maximum(speed * course_sigma_deg * (math.pi / 180.0), speed_sigma) ** 2
    c = np.radians(course_deg)
    ue = np.sin(c)
    un = np.cos(c)
    out = np.empty((speed.shape[0], 2, 2))
    out[:, 0, 0] = along * ue * ue + across * un * un
    out[:, 1, 1] = along * un * un + across * ue * ue
    out[:, 0, 1] = out[:, 1, 0] = (along - across) * ue * un
    return out
