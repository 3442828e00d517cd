"""Observations per second of CPU of the fusion tracker alone, with 2,000 simultaneous tracks.

    .venv/bin/python bench/fusion_throughput.py [--tracks 2000] [--rounds 50] [--batch 1,50,500]
                                               [--anonymous 200] [--json]

The scene: a third each of aircraft (ICAO, with speed and course), vessels (MMSI, with speed and
course) and ground trackers (APRS, position only), moving straight with noisy reports, every track
reporting once per one-second round. Each batch size feeds the same observations through
``Tracker.update_many`` in batches of that size (1 is ``update``), each batch from one source as a
feed hands them over, the three feeds taking turns, with ``expire`` once per round;
batches above 1 run again with one constant-velocity model for aircraft instead of the IMM.
``--anonymous N`` adds a second scene of N identity-less targets (radar-like, position only) that
go through the gated global-nearest-neighbour association. Observations are built before the clock
starts (decoding is the connectors' cost); the time is process CPU time (``time.process_time``),
so other load on a shared machine slows the wall clock but not the figure much.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from rallypoint.fusion.geodesy import from_enu
from rallypoint.fusion.settings import FusionSettings
from rallypoint.fusion.tracker import Tracker
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KINDS = (
    (Domain.AIR, IdentityKind.ICAO, 200.0, 30.0, True),
    (Domain.SEA, IdentityKind.MMSI, 8.0, 15.0, True),
    (Domain.GROUND, IdentityKind.APRS, 15.0, 20.0, False),
)


def scene(tracks: int, rounds: int, anonymous: bool, seed: int = 1) -> list[list[Observation]]:
    """One list of observations per one-second round, every track once per round (shuffled)."""
    rng = np.random.default_rng(seed)
    lat0 = rng.uniform(50.0, 60.0, tracks)
    lon0 = rng.uniform(0.0, 20.0, tracks)
    kind = np.arange(tracks) % len(KINDS)
    course = rng.uniform(0.0, 360.0, tracks)
    out: list[list[Observation]] = []
    for r in range(rounds):
        when = T0 + timedelta(seconds=r)
        batch: list[Observation] = []
        for i in rng.permutation(tracks).tolist():
            domain, id_kind, speed, sigma, has_velocity = KINDS[kind[i]]
            if anonymous:
                domain, speed, sigma, has_velocity = Domain.SEA, 8.0, 30.0, False
            dist = speed * r
            c = np.radians(course[i])
            e = dist * np.sin(c) + rng.normal(0.0, sigma)
            n = dist * np.cos(c) + rng.normal(0.0, sigma)
            lat, lon = from_enu(lat0[i : i + 1], lon0[i : i + 1], np.array([e]), np.array([n]))
            identity = None if anonymous else Identity(id_kind, f"{i:06x}" if id_kind is IdentityKind.ICAO else f"{i}")
            batch.append(
                Observation(
                    source="radar" if anonymous else id_kind.value,
                    received_at=when,
                    source_time=when,
                    lat=float(lat[0]),
                    lon=float(lon[0]),
                    domain=domain,
                    identity=identity,
                    course_deg=float(course[i]) if has_velocity else None,
                    speed_mps=speed if has_velocity else None,
                    ce_m=sigma,
                )
            )
        out.append(batch)
    return out


def run(rounds: list[list[Observation]], batch: int, settings: FusionSettings | None = None) -> dict[str, float]:
    """Feed every round through a fresh tracker in batches of ``batch``; CPU seconds and counts."""
    tracker = Tracker(settings)
    n = 0
    reports = 0
    start = time.process_time()
    for r, observations in enumerate(rounds):
        now = T0 + timedelta(seconds=r, milliseconds=500)
        if batch == 1:
            for obs in observations:
                reports += len(tracker.update(now, obs))
        else:
            # Each feed hands over its own batches (one source per batch), the feeds taking turns.
            feeds: dict[str, list[Observation]] = {}
            for obs in observations:
                feeds.setdefault(obs.source, []).append(obs)
            longest = max(len(f) for f in feeds.values())
            for k in range(0, longest, batch):
                for feed in feeds.values():
                    if k < len(feed):
                        reports += len(tracker.update_many(now, feed[k : k + batch]))
        tracker.expire(now)
        n += len(observations)
    cpu = time.process_time() - start
    stats = tracker.statistics()
    return {
        "batch": batch,
        "observations": n,
        "cpu_s": round(cpu, 3),
        "observations_per_s": round(n / cpu),
        "reports": reports,
        "tracks": stats["tracks"],
        "tracks_confirmed": stats["tracks_confirmed"],
    }


def main() -> None:
    """Parse the arguments, run each batch size, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--batch", default="1,50,500")
    parser.add_argument(
        "--anonymous", type=int, default=200, help="identity-less targets in the second scene (0: skip)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    identified = scene(args.tracks, args.rounds, anonymous=False)
    for batch in (int(b) for b in args.batch.split(",")):
        results.append({"scene": f"{args.tracks} identified", **run(identified, batch)})
        if batch > 1:
            # The same with one constant-velocity model for aircraft instead of the IMM.
            single = run(identified, batch, FusionSettings(air_imm=False))
            results.append({"scene": f"{args.tracks} id., no IMM", **single})
    if args.anonymous:
        anon = scene(args.anonymous, args.rounds, anonymous=True)
        for batch in (int(b) for b in args.batch.split(",") if int(b) > 1):
            results.append({"scene": f"{args.anonymous} identity-less", **run(anon, min(batch, args.anonymous))})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'scene':<20} {'batch':>6} {'observations':>13} {'cpu s':>8} {'obs/s':>9} {'tracks':>7} {'confirmed':>9}")
    for r in results:
        print(
            f"{r['scene']:<20} {r['batch']:>6} {r['observations']:>13} {r['cpu_s']:>8} "
            f"{r['observations_per_s']:>9} {r['tracks']:>7} {r['tracks_confirmed']:>9}"
        )


if __name__ == "__main__":
    main()
