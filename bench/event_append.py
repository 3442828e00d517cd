"""Append throughput of an event store backend, as the batch writer drives it.

    python bench/event_append.py [--url sqlite:///tmp/x.db | postgresql://...] [--events N] [--batch N]

Writes ``--events`` rows in batches of ``--batch`` (the writer's default is 2000), three broadcast
groups and one addressed row in ten, and prints rows per second; then times a reader-filtered
history query (one group of three, newest first, 500 rows).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from rallypoint.model.cot import CotEvent, Detail, Point
from rallypoint.storage.base import HistoryQuery, HistoryReader, StoredEvent, stored_event_from_cot
from rallypoint.storage.factory import open_event_store

T0 = 1_700_000_000_000
GROUPS = (frozenset({"Cyan"}), frozenset({"Red", "Blue"}), frozenset({"Blue"}))


def _rows(n: int) -> list[StoredEvent]:
    out = []
    for i in range(n):
        cot = CotEvent(
            uid=f"u-{i % 5000}", type="a-f-G-U-C", how="m-g", time=T0 + i, start=T0 + i, stale=T0 + i + 60_000,
            point=Point(lat=40.0 + (i % 100) / 1000, lon=-100.0 + (i % 77) / 1000, hae=0.0),
            detail=Detail(callsign=f"c{i % 5000}", group_name="Cyan"),
        )
        groups = frozenset() if i % 10 == 0 else GROUPS[i % 3]
        xml = b"<event/>" * 40
        out.append(stored_event_from_cot(cot, received=T0 + i, sender="s", xml=xml, groups=groups,
                                         picture=bool(groups)))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(args.url or f"sqlite:///{Path(tmp) / 'events.db'}", Path(tmp))
        rows = _rows(args.events)
        await store.append(rows[:1])  # open and migrate outside the timing
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(1, len(rows), args.batch):
            await store.append(rows[i : i + args.batch])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"append: {len(rows) - 1} rows in {elapsed:.2f} s = {(len(rows) - 1) / elapsed:,.0f} rows/s"
              f" ({cpu / (len(rows) - 1) * 1e6:.2f} us CPU per row in this process)")
        reader = HistoryReader(groups=frozenset({"Blue"}), sender="nobody")
        started = time.perf_counter()
        for _ in range(20):
            got = await store.query(HistoryQuery(reader=reader, order="desc", limit=500))
        print(f"reader query: {(time.perf_counter() - started) / 20 * 1000:.1f} ms per 500-row page ({len(got)} rows)")
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
