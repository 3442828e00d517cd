"""Interacting multiple models (IMM) for aircraft: a quiet and a manoeuvring constant-velocity model.

One constant-velocity model cannot be both smooth on straight legs and quick in a turn: an
airliner's standard-rate turn is 13 m/s^2 of lateral acceleration. The IMM runs two models per track
(low and high process noise), mixes them before each prediction by the chance of switching in the
elapsed time (mean sojourn ``sojourn_s`` per model), weights them after each update by how well
each predicted the measurement, and reports their probability-weighted combination. Vectorised
over tracks: arrays of shape (n, 2, ...) hold the two models of n tracks.
"""

from __future__ import annotations

import numpy as np

from rallypoint.fusion.geodesy import Array
from rallypoint.fusion.predictor import Predictor
from rallypoint.fusion.updater import inverse_2x2, inverse_4x4

MODELS = 2


class InteractingMultipleModel:
    """The IMM step over n tracks; model states are relative to each track's anchor like the combined one."""

    def __init__(
        self,
        predictor: Predictor,
        accel_sigma: tuple[float, float],
        sojourn_s: tuple[float, float],
    ) -> None:
        self.predictor = predictor
        self.accel = np.asarray(accel_sigma, dtype=float)
        self.sojourn = np.asarray(sojourn_s, dtype=float)

    @property
    def gate_accel(self) -> float:
        """The process noise gating and track-to-track tests use for IMM tracks: the manoeuvring
        model's, so a report of an aircraft that has just started turning still gates."""
        return float(self.accel.max())

    def step(
        self, xs: Array, ps: Array, mu: Array, dt: Array, z: Array, r: Array
    ) -> tuple[Array, Array, Array, Array, Array]:
        """Mix, predict by ``dt``, update with ``z`` (n,k) of noise ``r`` (n,k,k).

        Returns the model states (n,2,4), covariances (n,2,4,4), probabilities (n,2), and the
        combined state (n,4) and covariance (n,4,4).
        """
        n = xs.shape[0]
        k = z.shape[1]
        stay = np.exp(-dt[:, None] / self.sojourn[None, :])  # (n, 2)
        trans = np.empty((n, MODELS, MODELS))
        trans[:, 0, 0] = stay[:, 0]
        trans[:, 0, 1] = 1.0 - stay[:, 0]
        trans[:, 1, 1] = stay[:, 1]
        trans[:, 1, 0] = 1.0 - stay[:, 1]
        c = np.einsum("ni,nij->nj", mu, trans)
        w = trans * mu[:, :, None] / c[:, None, :]
        x0 = np.einsum("nij,nia->nja", w, xs)
        d = xs[:, :, None, :] - x0[:, None, :, :]
        # The spread term sum_i w_ij d_ij d_ij^T as a stacked matrix product (a three-operand
        # einsum costs about twice as much).
        spread = np.swapaxes(np.swapaxes(w[..., None] * d, 1, 2), 2, 3) @ np.swapaxes(d, 1, 2)
        p0 = np.einsum("nij,niab->njab", w, ps) + spread
        flat_x = x0.reshape(n * MODELS, 4)
        flat_p = p0.reshape(n * MODELS, 4, 4)
        xp, pp = self.predictor.predict(flat_x, flat_p, np.repeat(dt, MODELS), np.tile(self.accel, n))
        zz = np.repeat(z, MODELS, axis=0)
        rr = np.repeat(r, MODELS, axis=0)
        # The Kalman update written out (rather than through the updater) to share S^-1 with the
        # models' likelihoods.
        s = pp[:, :k, :k] + rr
        if k == 2:
            s_inv = inverse_2x2(s)
            det = s[:, 0, 0] * s[:, 1, 1] - s[:, 0, 1] * s[:, 1, 0]
        else:
            s_inv, det = inverse_4x4(s)
        y = zz - xp[:, :k]
        d2 = np.einsum("ni,nij,nj->n", y, s_inv, y)
        log_like = (-0.5 * (d2 + np.log(det))).reshape(n, MODELS)
        gain = pp[:, :, :k] @ s_inv
        xu = xp + np.einsum("nij,nj->ni", gain, y)
        pu = pp - gain @ s @ np.swapaxes(gain, 1, 2)
        pu = 0.5 * (pu + np.swapaxes(pu, 1, 2))
        xs_new = xu.reshape(n, MODELS, 4)
        ps_new = pu.reshape(n, MODELS, 4, 4)
        weight = c * np.exp(log_like - log_like.max(axis=1, keepdims=True))
        mu_new = weight / weight.sum(axis=1, keepdims=True)
        mu_new = np.clip(mu_new, 1e-6, 1.0)
        mu_new /= mu_new.sum(axis=1, keepdims=True)
        x = np.einsum("nj,nja->na", mu_new, xs_new)
        dx = xs_new - x[:, None, :]
        p = np.einsum("nj,njab->nab", mu_new, ps_new) + np.swapaxes(mu_new[..., None] * dx, 1, 2) @ dx
        return xs_new, ps_new, mu_new, x, p
