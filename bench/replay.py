"""CPU time of replaying a window: reading it from SQLite a page at a time, re-stamping each event for a
live server, and exporting it as KML, GeoJSON and CSV.

Run: .venv/bin/python bench/replay.py [--events N] [--runs N]

Figures are CPU time of this process (``time.process_time``), so other work on a shared machine does
not inflate them; each is the best of ``--runs`` runs, per 1,000 events. The window is ``--events``
position reports of 200 units (real CoT XML as the ingest path stores it) in a fresh SQLite store.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rallypoint.model.cot import CotEvent, Detail, Point
from rallypoint.services.replay import restamp, window, window_rows
from rallypoint.storage.base import StoredEvent, stored_event_from_cot
from rallypoint.storage.export import to_csv, to_geojson, to_kml
from rallypoint.storage.factory import open_event_store

T0 = 1_700_000_000_000
UNITS = 200


def rows(count: int) -> list[StoredEvent]:
    """``count`` reports of ``UNITS`` units, one a second each, moving north-east."""
    out = []
    for i in range(count):
        unit, step = i % UNITS, i // UNITS
        t = T0 + step * 1000 + unit
        event = CotEvent(uid=f"unit-{unit}", type="a-f-G-U-C", how="m-g", time=t, start=t, stale=t + 60_000,
                         point=Point(lat=39.0 + step * 1e-4, lon=-120.0 + unit * 1e-3, hae=100.0),
                         detail=Detail(callsign=f"U{unit}", group_name="Cyan"))
        out.append(stored_event_from_cot(event, received=t, groups=("__ANON__",), picture=True))
    return out


def best(runs: int, work: Callable[[], object]) -> float:
    """The least CPU seconds of ``runs`` runs of ``work``."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = rows(args.events)
    win = window(T0, T0 + args.events * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        async def fill() -> None:
            store = open_event_store("sqlite://", Path(tmp))
            try:
                for start in range(0, len(data), 5000):
                    await store.append(data[start:start + 5000])
            finally:
                await store.close()

        asyncio.run(fill())

        async def read_all() -> list[StoredEvent]:
            store = open_event_store("sqlite://", Path(tmp))
            try:
                return [row async for row in window_rows(store, win, reader=None, limit=args.events)]
            finally:
                await store.close()

        read: list[StoredEvent] = []

        def read_window() -> None:
            read[:] = asyncio.run(read_all())

        per_k = 1000 / args.events
        figures = {"read the window (SQLite, 1,000-row pages)": best(args.runs, read_window) * per_k}
        assert len(read) == args.events
        figures["re-stamp for a live server"] = best(
            args.runs, lambda: [restamp(r.xml, shift_ms=3_600_000) for r in read]) * per_k
        figures["export KML"] = best(args.runs, lambda: to_kml(read)) * per_k
        figures["export GeoJSON (dict)"] = best(args.runs, lambda: to_geojson(read)) * per_k
        figures["export CSV"] = best(args.runs, lambda: to_csv(read)) * per_k
    print(f"{args.events} events, {UNITS} units, best of {args.runs} runs, CPU ms per 1,000 events")
    for name, seconds in figures.items():
        print(f"  {name:45s} {seconds * 1000:8.1f}")


if __name__ == "__main__":
    main()
