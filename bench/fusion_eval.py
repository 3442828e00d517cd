"""Fused against single-source tracking against Stone Soup's GNN tracker, on one recorded scenario.

Run: .venv/bin/python bench/fusion_eval.py [--scenario mixed] [--seed 1] [--record FILE]
         [--c 500] [--p 2] [--step 2] [--repeat 3] [--stonesoup PYTHON] [--stonesoup-repeat 1]
         [--window 0] [--reuse-stonesoup EARLIER.json] [--out DIR] [--plots DIR]

The scenario comes from a recording (``rallypoint simulate feeds --record FILE``) or is generated
in memory with ``--scenario``/``--seed`` (and written to ``DIR/scenario.jsonl``). Every variant
reads the same reports in delivery order:

* ``fused``: ``rallypoint.fusion.tracker.Tracker`` fed every source;
* one variant per source: the same tracker fed that source alone;
* ``stonesoup-gnn``: Stone Soup's GNN tracker (``bench/stonesoup_gnn.py``, run with the Python of a
  separate venv holding Stone Soup), fed every position without identities.

At every ``--step`` seconds of scenario time each variant's confirmed tracks (extrapolated to that
instant along their velocity) are compared with the truth by OSPA (cutoff ``--c`` metres, order
``--p``) in the scenario's local frame. Throughput is observations per second of process CPU time
spent inside the tracker (best of ``--repeat`` runs), never wall time: the machine is shared.
Results go to ``DIR/fusion_eval.json``; ``--plots DIR`` draws the PNGs with the Stone Soup venv's
matplotlib (``bench/fusion_plot.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from rallypoint.fusion.metrics import LocalFrame, mean_ospa, ospa
from rallypoint.fusion.scenario import SCENARIOS, build_scenario
from rallypoint.fusion.scenario_record import Recording, ReportLine, read_recording, record_lines
from rallypoint.fusion.scenario_sources import DEFAULT_SOURCES, simulate
from rallypoint.model.track import Domain, TrackReport, TrackStatus

HERE = Path(__file__).resolve().parent
DEFAULT_STONESOUP = HERE / ".venv-stonesoup" / "bin" / "python"


def load(args: argparse.Namespace, out: Path) -> tuple[Recording, Path]:
    """The recording to evaluate, and its path (written when generated here)."""
    if args.record:
        path = Path(args.record)
    else:
        world = build_scenario(SCENARIOS[args.scenario], args.seed)
        path = out / "scenario.jsonl"
        with path.open("wb") as f:
            f.writelines(record_lines(world, DEFAULT_SOURCES, simulate(world)))
    with path.open("rb") as f:
        return read_recording(f), path


def eval_times(recording: Recording, step: float) -> list[float]:
    """Instants with truth every ``step`` seconds (the first ``step`` skipped: nothing is confirmed yet)."""
    return [t for t in recording.truth_times() if t >= step and abs(t / step - round(t / step)) < 1e-9]


Estimate = tuple[np.ndarray, list[Domain]]  # east/north of each shown track, and its domain


def positions_at(frame: LocalFrame, tracks: Sequence[TrackReport], start_epoch: float, t: float) -> Estimate:
    """East/north of each confirmed track, carried along its course and speed to scenario time ``t``."""
    shown = [r for r in tracks if r.status is TrackStatus.CONFIRMED]
    if not shown:
        return np.zeros((0, 2)), []
    xy = frame.to_local([r.lat for r in shown], [r.lon for r in shown])
    for i, r in enumerate(shown):
        if r.speed_mps is not None and r.course_deg is not None:
            dt = max(0.0, start_epoch + t - r.time.timestamp())
            c = math.radians(r.course_deg)
            xy[i] += (r.speed_mps * math.sin(c) * dt, r.speed_mps * math.cos(c) * dt)
    return xy, [r.domain for r in shown]


def run_tracker(
    recording: Recording, reports: list[ReportLine], times: list[float], factory: Callable[[], Any]
) -> tuple[list[Estimate], float]:
    """Feed ``reports`` in delivery order, in batches up to each instant; estimates per instant and CPU seconds."""
    tracker = factory()
    start = recording.scenario.start
    start_epoch = start.timestamp()
    frame = recording.frame
    estimates: list[Estimate] = []
    cpu = 0.0
    k = 0
    for t in times:
        batch = []
        while k < len(reports) and reports[k].deliver_s <= t:
            batch.append(reports[k].observation)
            k += 1
        now = start + timedelta(seconds=t)
        began = time.process_time()
        if batch:
            tracker.update_many(now, batch)
        tracker.expire(now)
        cpu += time.process_time() - began
        estimates.append(positions_at(frame, tracker.tracks(), start_epoch, t))
    return estimates, cpu


def run_stonesoup(python: Path, recording: Recording, reports: list[ReportLine], times: list[float],
                  repeat: int, window_s: float) -> tuple[list[Estimate], float, str]:
    """Stone Soup's GNN in its own interpreter: detections in local metres on stdin, tracks on stdout."""
    frame = recording.frame
    detections = []
    for r in reports:
        xy = frame.to_local(r.observation.lat, r.observation.lon)[0]
        detections.append([r.measured_s, r.deliver_s, float(xy[0]), float(xy[1]), r.observation.ce_m or 50.0])
    job = json.dumps({"detections": detections, "times": times, "repeat": repeat, "window_s": window_s})
    done = subprocess.run([str(python), str(HERE / "stonesoup_gnn.py")], input=job, capture_output=True,
                          text=True, check=True)
    answer = json.loads(done.stdout)
    estimates = [(np.asarray(e, dtype=float).reshape(-1, 2), [Domain.UNKNOWN] * len(e)) for e in answer["estimates"]]
    return estimates, answer["cpu_s"], answer["version"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="mixed", choices=sorted(SCENARIOS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--record", help="evaluate this recording instead of generating one")
    parser.add_argument("--c", type=float, default=500.0, help="OSPA cutoff, metres")
    parser.add_argument("--p", type=float, default=2.0, help="OSPA order")
    parser.add_argument("--step", type=float, default=2.0, help="seconds between OSPA instants")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the least CPU time counts")
    parser.add_argument("--stonesoup", default=str(DEFAULT_STONESOUP), help="Python with Stone Soup ('' skips it)")
    parser.add_argument("--window", type=float, default=0.0,
                        help="Stone Soup's scan window, seconds (0: one step per detection, its best here)")
    parser.add_argument("--stonesoup-repeat", type=int, default=1, help="Stone Soup runs (each takes minutes)")
    parser.add_argument("--reuse-stonesoup", default=None,
                        help="take Stone Soup's figures from an earlier fusion_eval.json of the same recording")
    parser.add_argument("--out", default=None, help="directory for the results (default: a temporary one)")
    parser.add_argument("--plots", default=None, help="directory for the PNG plots (e.g. docs/img)")
    args = parser.parse_args()

    from rallypoint.fusion.tracker import Tracker  # the subject under test; imported late so --help works

    out = Path(args.out or tempfile.mkdtemp(prefix="fusion-eval-"))
    out.mkdir(parents=True, exist_ok=True)
    recording, path = load(args, out)
    times = eval_times(recording, args.step)
    domain_of = {target.id: target.domain for target in recording.scenario.targets}
    truth = [(recording.truth_points(t), [domain_of[s.id] for s in recording.truth[t]]) for t in times]
    sources = [s.name for s in recording.scenario.sources]
    variants: dict[str, list[ReportLine]] = {"fused": recording.reports}
    for name in sources:
        variants[name] = [r for r in recording.reports if r.observation.source == name]

    results: dict[str, Any] = {
        "scenario": recording.scenario.name, "seed": recording.scenario.seed, "recording": str(path),
        "targets": len(recording.scenario.targets), "reports": len(recording.reports),
        "c": args.c, "p": args.p, "step": args.step, "stonesoup_window_s": args.window, "times": times,
        "variants": {},
    }
    covered = {s.name: set(s.domains) for s in recording.scenario.sources}
    fused_estimates: list[Estimate] = []
    for name, reports in variants.items():
        best = math.inf
        for _ in range(args.repeat):
            estimates, cpu = run_tracker(recording, reports, times, Tracker)
            best = min(best, cpu)
        _score(results, name, estimates, truth, len(reports), best, args)
        if name == "fused":
            fused_estimates = estimates
        else:
            # The fair comparison for one source: only the kinds of object it can see, fused against alone.
            domains = covered[name]
            alone = _mean([ospa(e, t, c=args.c, p=args.p).value for e, t in _only(estimates, truth, domains)])
            both = _mean([ospa(e, t, c=args.c, p=args.p).value for e, t in _only(fused_estimates, truth, domains)])
            results["variants"][name]["covered_domains"] = sorted(domains)
            results["variants"][name]["mean_ospa_covered"] = alone
            results["variants"][name]["fused_mean_ospa_covered"] = both
    if args.reuse_stonesoup:
        earlier = json.loads(Path(args.reuse_stonesoup).read_text())
        if (earlier["scenario"], earlier["seed"], earlier["reports"], earlier["times"]) != (
                results["scenario"], results["seed"], results["reports"], times):
            sys.exit(f"{args.reuse_stonesoup}: not the same recording and instants")
        results["stonesoup_version"] = earlier["stonesoup_version"]
        results["variants"]["stonesoup-gnn"] = earlier["variants"]["stonesoup-gnn"]
    elif args.stonesoup:
        estimates, cpu, version = run_stonesoup(
            Path(args.stonesoup), recording, recording.reports, times, args.stonesoup_repeat, args.window)
        results["stonesoup_version"] = version
        _score(results, "stonesoup-gnn", estimates, truth, len(recording.reports), cpu, args)
    if "stonesoup-gnn" in results["variants"]:
        fused, gnn = results["variants"]["fused"], results["variants"]["stonesoup-gnn"]
        results["speed_ratio_vs_stonesoup"] = fused["observations_per_s"] / gnn["observations_per_s"]

    (out / "fusion_eval.json").write_text(json.dumps(results, indent=1))
    _summary(results)
    print(f"results: {out / 'fusion_eval.json'}")
    if args.plots:
        subprocess.run([str(args.stonesoup or DEFAULT_STONESOUP), str(HERE / "fusion_plot.py"),
                        str(out / "fusion_eval.json"), args.plots], check=True)


def _only(estimates: list[Estimate], truth: list[Estimate], domains: set[Domain]) -> list[tuple[Any, Any]]:
    """Estimates and truth of the given domains only, instant by instant."""

    def keep(points: np.ndarray, of: list[Domain]) -> np.ndarray:
        return points[[d in domains for d in of]] if len(points) else points

    return [(keep(e, e_dom), keep(t, t_dom)) for (e, e_dom), (t, t_dom) in zip(estimates, truth, strict=True)]


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _score(results: dict[str, Any], name: str, estimates: list[Estimate], truth: list[Estimate],
           observations: int, cpu: float, args: argparse.Namespace) -> None:
    series = [ospa(e, t, c=args.c, p=args.p) for (e, _), (t, _) in zip(estimates, truth, strict=True)]
    results["variants"][name] = {
        "observations": observations, "cpu_s": cpu,
        "observations_per_s": observations / cpu if cpu > 0 else float("inf"),
        "mean_ospa": mean_ospa(series),
        "mean_localisation": float(np.mean([s.localisation for s in series])),
        "mean_cardinality": float(np.mean([s.cardinality for s in series])),
        "mean_tracks": float(np.mean([len(e) for e, _ in estimates])),
        "ospa": [s.value for s in series],
    }


def _summary(results: dict[str, Any]) -> None:
    print(f"scenario {results['scenario']} seed {results['seed']}: {results['targets']} targets, "
          f"{results['reports']} reports; OSPA c={results['c']:g} m p={results['p']:g}")
    print(f"{'variant':<14} {'obs':>6} {'mean OSPA':>10} {'loc':>7} {'card':>7} {'tracks':>7} {'obs/s (CPU)':>12}")
    for name, v in results["variants"].items():
        print(f"{name:<14} {v['observations']:>6} {v['mean_ospa']:>10.1f} {v['mean_localisation']:>7.1f} "
              f"{v['mean_cardinality']:>7.1f} {v['mean_tracks']:>7.1f} {v['observations_per_s']:>12,.0f}")
    print("on the kinds of object each source sees:")
    for name, v in results["variants"].items():
        if "mean_ospa_covered" in v:
            print(f"  {name:<12} ({', '.join(v['covered_domains'])}): alone {v['mean_ospa_covered']:.1f}, "
                  f"fused {v['fused_mean_ospa_covered']:.1f}")
    if "speed_ratio_vs_stonesoup" in results:
        print(f"fused tracker / Stone Soup GNN observations per CPU second: {results['speed_ratio_vs_stonesoup']:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
