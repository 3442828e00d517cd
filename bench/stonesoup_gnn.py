"""Stone Soup's global-nearest-neighbour tracker on a recorded scenario: the peer ``fusion_eval.py`` compares with.

Run by ``bench/fusion_eval.py`` with the Python of a separate venv holding Stone Soup (never a project
dependency): ``cd bench && python3 -m venv .venv-stonesoup && .venv-stonesoup/bin/pip install stonesoup matplotlib``.

stdin: ``{"detections": [[measured_s, deliver_s, east_m, north_m, sigma_m], ...], "times": [...], "repeat": N}``
stdout: ``{"estimates": [[[east, north], ...] per time], "cpu_s": ..., "version": ...}``

The tracker is the one Stone Soup's tutorials build: a constant-velocity model per axis, a Kalman
predictor and updater, a Mahalanobis distance hypothesiser (missed distance 3), 2-D assignment GNN,
a multi-measurement initiator (3 updates to confirm) and a deleter after 15 s without an update.
Each detection has its own linear-Gaussian measurement model with its source's noise. Stone Soup
needs time to move forward, so detections are given in measurement order (it never sees the late
and reordered deliveries our tracker handles), grouped in 1 s windows. At each requested time the
confirmed tracks are carried along their velocity to that instant. ``cpu_s`` is the process CPU
time of the tracking loop alone (least of ``repeat`` runs), detection objects built beforehand.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import stonesoup
from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
from stonesoup.deleter.time import UpdateTimeDeleter
from stonesoup.hypothesiser.distance import DistanceHypothesiser
from stonesoup.initiator.simple import MultiMeasurementInitiator
from stonesoup.measures import Mahalanobis
from stonesoup.models.measurement.linear import LinearGaussian
from stonesoup.models.transition.linear import CombinedLinearGaussianTransitionModel, ConstantVelocity
from stonesoup.predictor.kalman import KalmanPredictor
from stonesoup.tracker.simple import MultiTargetTracker
from stonesoup.types.detection import Detection
from stonesoup.types.state import GaussianState
from stonesoup.updater.kalman import KalmanUpdater

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW_S = 1.0
Q = 9.0  # m^2/s^3: white-noise acceleration of 3 m/s^2 per sqrt(Hz), as our tracker uses for aircraft


def build(steps: list[tuple[datetime, set[Detection]]]) -> MultiTargetTracker:
    transition = CombinedLinearGaussianTransitionModel([ConstantVelocity(Q), ConstantVelocity(Q)])
    predictor = KalmanPredictor(transition)
    updater = KalmanUpdater(measurement_model=None)
    hypothesiser = DistanceHypothesiser(predictor, updater, measure=Mahalanobis(), missed_distance=3)
    associator = GNNWith2DAssignment(hypothesiser)
    deleter = UpdateTimeDeleter(time_since_update=timedelta(seconds=15))
    prior = GaussianState(np.zeros((4, 1)), np.diag([0.0, 150.0**2, 0.0, 150.0**2]))
    initiator = MultiMeasurementInitiator(
        prior_state=prior, deleter=UpdateTimeDeleter(time_since_update=timedelta(seconds=10)),
        data_associator=GNNWith2DAssignment(hypothesiser), updater=updater, min_points=3,
    )
    return MultiTargetTracker(initiator=initiator, deleter=deleter, detector=steps, data_associator=associator,
                              updater=updater)


Step = tuple[datetime, set[Detection]]


def steps_of(detections: list[list[float]], times: list[float], window_s: float) -> tuple[list[Step], set[int]]:
    """The tracker's input steps and the indices of the steps after which to take a snapshot.

    ``window_s`` > 0 groups detections in windows of that length (a "scan" each); 0 gives every
    detection its own step (sequential updates, no two detections ever compete for one track).
    An empty step at each requested time lets the snapshot (and deletion) happen exactly there.
    """
    models: dict[float, LinearGaussian] = {}
    keyed: list[tuple[float, int, set[Detection]]] = []  # (time, order: detections before snapshots)
    grouped: dict[float, set[Detection]] = {}
    for measured, _deliver, east, north, sigma in sorted(detections):
        model = models.get(sigma)
        if model is None:
            model = models[sigma] = LinearGaussian(ndim_state=4, mapping=(0, 2), noise_covar=np.diag([sigma**2] * 2))
        det = Detection(np.array([[east], [north]]), timestamp=EPOCH + timedelta(seconds=measured),
                        measurement_model=model)
        if window_s > 0:
            grouped.setdefault(((measured // window_s) + 1) * window_s, set()).add(det)
        else:
            keyed.append((measured, 0, {det}))
    keyed += [(t, 0, dets) for t, dets in grouped.items()]
    keyed += [(t, 1, set()) for t in times]
    keyed.sort(key=lambda k: (k[0], k[1]))
    steps = [(EPOCH + timedelta(seconds=t), dets) for t, _order, dets in keyed]
    snapshots = {i for i, (_t, order, _d) in enumerate(keyed) if order == 1}
    return steps, snapshots


def run(steps: list[Step], snapshots: set[int]) -> tuple[list[list[list[float]]], float]:
    tracker = build(steps)
    estimates: list[list[list[float]]] = []
    cpu = 0.0
    iterator = iter(tracker)
    for k in range(len(steps)):
        began = time.process_time()
        at, tracks = next(iterator)
        cpu += time.process_time() - began
        if k in snapshots:
            points = []
            for track in tracks:
                x, vx, y, vy = (float(v) for v in np.ravel(track.state_vector))
                dt = (at - track.timestamp).total_seconds()
                points.append([x + vx * dt, y + vy * dt])
            estimates.append(points)
    return estimates, cpu


def main() -> None:
    job = json.load(sys.stdin)
    times = job["times"]
    best = float("inf")
    estimates: list[list[list[float]]] = []
    for _ in range(max(1, job.get("repeat", 1))):
        steps, snapshots = steps_of(job["detections"], times, job.get("window_s", WINDOW_S))
        estimates, cpu = run(steps, snapshots)
        best = min(best, cpu)
    json.dump({"estimates": estimates, "cpu_s": best, "version": stonesoup.__version__}, sys.stdout)


if __name__ == "__main__":
    main()
