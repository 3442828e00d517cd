"""History area queries on PostgreSQL: the PostGIS index against the plain box index, in one run.

    python bench/postgis_area.py --admin postgresql://postgres@127.0.0.1:5432/postgres [--events N] [--queries N]

Creates two throwaway databases (dropped at the end), one with the PostGIS extension and one
without, appends the same ``--events`` rows to each through ``PostgresEventStore`` (positions spread
over the globe, a tenth in a dense area near Berlin) and times:

* the append (the PostGIS form computes a geometry per row);
* ``--queries`` history pages (500 rows, newest first) for small boxes (0.5 degree) in the dense
  area, and for boxes crossing the antimeridian;
* a page for a box that holds a quarter of the globe.

The database server does the work, so the figures are wall times of the same queries on the same
rows in the same run; the ratio between the two indexes is what to read. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from rallypoint.model.cot import CotEvent, Detail, Point
from rallypoint.storage.base import BBox, HistoryQuery, StoredEvent, stored_event_from_cot
from rallypoint.storage.postgres.events import PostgresEventStore

T0 = 1_700_000_000_000
BATCH = 2000


def _rows(n: int, seed: int = 11) -> list[StoredEvent]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 10 == 0:
            lat, lon = rng.uniform(52.0, 53.0), rng.uniform(13.0, 14.0)
        else:
            lat, lon = rng.uniform(-85, 85), rng.uniform(-180, 180)
        cot = CotEvent(
            uid=f"u-{i % 20_000}", type="a-f-G-U-C", how="m-g", time=T0 + i, start=T0 + i, stale=T0 + i + 60_000,
            point=Point(lat=lat, lon=lon, hae=0.0), detail=Detail(callsign=f"c{i % 20_000}"),
        )
        out.append(stored_event_from_cot(cot, received=T0 + i, sender="s", xml=b"<event/>" * 40,
                                         groups=frozenset({"Cyan"}), picture=True))
    return out


def _dsn(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


async def _timed(make: Callable[[], Awaitable[object]], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        await make()
    return (time.perf_counter() - started) / repeat


async def _measure(dsn: str, rows: list[StoredEvent], queries: int) -> dict[str, object]:
    store = PostgresEventStore(dsn)
    try:
        await store.append(rows[:1])  # open and migrate outside the timing
        started = time.perf_counter()
        for i in range(1, len(rows), BATCH):
            await store.append(rows[i : i + BATCH])
        append_s = time.perf_counter() - started
        conn = await asyncpg.connect(dsn.split("?")[0])
        try:
            await conn.execute("ANALYZE events")
        finally:
            await conn.close()
        rng = random.Random(5)
        small: list[BBox] = []
        for _ in range(queries):
            lon, lat = rng.uniform(13.0, 13.5), rng.uniform(52.0, 52.5)
            small.append((lon, lat, lon + 0.5, lat + 0.5))
        crossing: list[BBox] = [(179.0 + rng.uniform(0, 0.5), -10.0, -179.0, 10.0) for _ in range(queries)]
        it_small, it_crossing = iter(small * 2), iter(crossing * 2)

        def page(box: BBox) -> Awaitable[object]:
            return store.query(HistoryQuery(bbox=box, limit=500, order="desc"))

        await page(small[0])  # warm the cache
        return {
            "area_index": store.area_index,
            "append_rows_per_s": round((len(rows) - 1) / append_s),
            "small_box_ms": round(1000 * await _timed(lambda: page(next(it_small)), queries), 2),
            "antimeridian_box_ms": round(1000 * await _timed(lambda: page(next(it_crossing)), queries), 2),
            "quarter_globe_ms": round(1000 * await _timed(lambda: page((0.0, 0.0, 180.0, 85.0)), 5), 2),
        }
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rows = _rows(args.events)
    names = {"postgis": f"rp_bench_gis_{secrets.token_hex(4)}", "bbox": f"rp_bench_box_{secrets.token_hex(4)}"}
    admin = await asyncpg.connect(args.admin)
    try:
        for name in names.values():
            await admin.execute(f'CREATE DATABASE "{name}"')
        results = {}
        try:
            gis = await asyncpg.connect(_dsn(args.admin, names["postgis"]))
            try:
                await gis.execute("CREATE EXTENSION postgis")
            finally:
                await gis.close()
            for kind, name in names.items():
                mode = "require" if kind == "postgis" else "off"
                results[kind] = await _measure(f"{_dsn(args.admin, name)}?postgis={mode}", rows, args.queries)
        finally:
            for name in names.values():
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    print(json.dumps({"events": args.events, "queries": args.queries, **results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
