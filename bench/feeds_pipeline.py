"""Observations per second of CPU through the whole feed path: decode -> fuse -> CoT -> route.

    .venv/bin/python bench/feeds_pipeline.py [--scene both] [--tracks 2000] [--seconds 10]
                                             [--stage every] [--json]

Two scenes of ``--tracks`` aircraft on an SBS-1 feed, moving north, over ``--seconds`` seconds:

* ``10hz`` (the target's shape): every aircraft sends a position line (``MSG,3``) ten times a
  second and a velocity line (``MSG,4``) with every other one; the clock advances 0.1 s per step,
  so the feed service says each track once a second, as in production, and holds the rest;
* ``1hz`` (the worst case): one position and one velocity line per aircraft per second, so every
  observation changes a confirmed track that is due and becomes a CoT event and an ingest call.

The bytes are built before the clock starts and handed to the real SBS decoder in reads of the
TCP runner's size (``READ_BYTES``, 64 KiB: a busy feed fills them); each read's observations go
to the feed service (``FeedService.take``: the fusion tracker, the track CoT, then
``Ingest.accept`` of a node built by ``build_node`` with in-memory storage and the local bus, no
clients connected). Every 0.25 s of scene time the service
expires tracks and says the held reports that are due (``flush``), as its run loop does. Stages,
each measured alone on the same bytes:

* ``decode``: the decoder only;
* ``fuse``: decoder and tracker;
* ``cot``: decoder, tracker and the CoT of every report (accept discards the envelope);
* ``all``: the whole path into the node's ingest (routing, picture, storage queue, bus).

The figure is process CPU time (``time.process_time``), so other load on a shared machine slows
the wall clock but not the figure much. Run ``--stage all`` for the end-to-end number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable

from rallypoint.clock import ManualClock, ms_to_datetime
from rallypoint.config import FeedConfig, load_settings
from rallypoint.connectors.runners.stream import READ_BYTES
from rallypoint.connectors.sbs import SbsDecoder
from rallypoint.fusion.tracker import Tracker
from rallypoint.routing.envelope import Envelope
from rallypoint.services.feed_types import FeedInfo, FeedStatistics, LayerSink, ObservationSink
from rallypoint.services.feeds import FeedService

T0_MS = 1_780_000_000_000


SCENES = {"10hz": 10, "1hz": 1}  # position lines per aircraft per second


def sbs_steps(tracks: int, seconds: int, rate: int) -> list[bytes]:
    """One SBS document per step of ``1/rate`` s: a position line per aircraft, a velocity line
    with every other one (with every one at 1 Hz)."""
    out = []
    for step in range(seconds * rate):
        when = ms_to_datetime(T0_MS + step * 1000 // rate)
        stamp = f"{when:%Y/%m/%d},{when:%H:%M:%S}.{when.microsecond // 1000:03d}"
        dt = step / rate
        lines = []
        for i in range(tracks):
            icao = f"{0x400000 + i:06X}"
            # 120 m/s north: about 0.00108 degrees of latitude per second.
            lat, lon = 48.0 + (i % 100) * 0.05 + dt * 0.00108, 2.0 + (i // 100) * 0.05
            lines.append(f"MSG,3,1,1,{icao},1,{stamp},{stamp},,35000,,,{lat:.5f},{lon:.5f},,,0,0,0,0\r\n")
            if step % 2 == 0 or rate == 1:
                lines.append(f"MSG,4,1,1,{icao},1,{stamp},{stamp},,,233,0.0,,,0,,0,0,0,0\r\n")
        out.append("".join(lines).encode())
    return out


class _Idle:
    """A runner that carries nothing: the bytes are handed to the service by the benchmark itself."""

    def pause(self) -> None:
        return None

    def resume(self) -> None:
        return None

    def statistics(self) -> FeedStatistics:
        return FeedStatistics()

    async def run(self) -> None:
        return None


def _opener(config: FeedConfig, sink: ObservationSink, layers: LayerSink) -> tuple[FeedInfo, _Idle]:
    return FeedInfo(name="adsb", url=config.url, format="sbs", transport="tcp"), _Idle()


async def measure(scene: str, stage: str, documents: list[bytes], rate: int) -> dict[str, float | int | str]:
    """Run ``stage`` over ``documents`` (one per ``1/rate`` s); observations, CPU s, observations/s."""
    clock = ManualClock(T0_MS)
    accept: Callable[[Envelope], object] = lambda envelope: None  # noqa: E731
    node = None
    if stage == "all":
        from rallypoint.node.build import build_node

        settings = load_settings(environ={}, overrides={"data_dir": tempfile.mkdtemp(prefix="rp-bench-"),
                                                        "storage": "memory://"})
        node = build_node(settings, clock=clock)
        accept = node.ingest.accept
    tracker = Tracker()
    service = FeedService(clock=clock, accept=accept, tracker=tracker, opener=_opener)
    service.add(FeedConfig(url="sbs+tcp://127.0.0.1:30003"))
    decoder = SbsDecoder("adsb")
    writer_task = asyncio.create_task(node.writer.run()) if node is not None else None
    observations = 0
    started = time.process_time()
    tick_every = max(1, rate // 4)  # the service's run loop expires and flushes every 0.25 s
    for step, document in enumerate(documents):
        received = ms_to_datetime(clock.now_ms())
        for offset in range(0, len(document), READ_BYTES):
            batch = decoder.receive(document[offset:offset + READ_BYTES], received)
            observations += len(batch)
            if stage == "fuse":
                tracker.update_many(received, batch)
            elif stage in ("cot", "all"):
                service.take("adsb", batch)
        if step % tick_every == 0:
            if stage == "fuse":
                tracker.expire(received)
            elif stage in ("cot", "all"):
                service.publish(tracker.expire(received))
                service.flush()
        if writer_task is not None:
            await asyncio.sleep(0)  # let the storage writer take its batch, as the node's loop would
        clock.advance(1.0 / rate)
    cpu = time.process_time() - started
    if node is not None and writer_task is not None:
        node.writer.stop()
        await writer_task
    return {"scene": scene, "stage": stage, "observations": observations, "published": service.published,
            "cpu_s": round(cpu, 3), "obs_per_s": round(observations / cpu) if cpu else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=10, help="seconds of scene time")
    parser.add_argument("--scene", choices=(*SCENES, "both"), default="both")
    parser.add_argument("--stage", choices=("decode", "fuse", "cot", "all", "every"), default="every")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scenes = tuple(SCENES) if args.scene == "both" else (args.scene,)
    stages = ("decode", "fuse", "cot", "all") if args.stage == "every" else (args.stage,)
    results = []
    for scene in scenes:
        documents = sbs_steps(args.tracks, args.seconds, SCENES[scene])
        results += [asyncio.run(measure(scene, stage, documents, SCENES[scene])) for stage in stages]
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'scene':<5} {'stage':<8} {'observations':>12} {'published':>10} {'CPU s':>8} {'obs/s (CPU)':>12}")
    for r in results:
        print(f"{r['scene']:<5} {r['stage']:<8} {r['observations']:>12} {r['published']:>10} {r['cpu_s']:>8}"
              f" {r['obs_per_s']:>12}")


if __name__ == "__main__":
    main()
