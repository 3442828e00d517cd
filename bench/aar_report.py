"""After-action report over a large stored history: a 1,000,000-event SQLite store, then the report.

    python bench/aar_report.py [--events N] [--units N] [--db PATH] [--cli] [--json]

Builds (or reuses, with ``--db`` naming an existing file) a store of ``--units`` simulated units of
exercise ``bench`` reporting once a second with the exercise marker (realistic XML, about 420 bytes a
row), three injects among them, every 97th report 3 s late and every 211th missing; a thousandth of
the rows belong to another exercise. Then times the report in this process (store read + figures,
then HTML) as wall time and process CPU, and with ``--cli`` as ``rallypoint exercise report`` in a
child process (wall time, HTML written). The target: under 30 s for 1,000,000 events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rallypoint.aar.html import render_html
from rallypoint.aar.load import build_report
from rallypoint.storage.base import StoredEvent
from rallypoint.storage.factory import open_event_store
from rallypoint.storage.sqlite.events import SqliteEventStore

T0 = 1_800_000_000_000
BATCH = 10_000
GROUPS = frozenset({"Cyan"})
TEAMS = ("Cyan", "Red", "Blue", "Green")


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _row(i: int, units: int) -> StoredEvent | None:
    second, u = divmod(i, units)
    if i % 211 == 0:
        return None  # a lost report
    t = T0 + second * 1000 + u % 1000
    exercise = "other" if i % 1000 == 999 else "bench"
    uid = f"sim-{exercise}-{u}"
    lat, lon = 39.0 + (u % 50) * 0.002 + second * 1e-5, -120.0 + (u // 50) * 0.002
    team, callsign = TEAMS[u % 4], f"U-{u}"
    inject = ""
    typ = "a-f-G-U-C"
    if u == 7 and second in (60, 120, 180):
        inject = f' inject="inj-{second}" kind="emergency"'
        typ, uid = "b-a-o-tbl", f"{uid}-9-1-1"
    xml = (f'<event version="2.0" uid="{uid}" type="{typ}" how="m-s" time="{_iso(t)}" start="{_iso(t)}"'
           f' stale="{_iso(t + 60_000)}" opex="e-{exercise}"><point lat="{lat:.6f}" lon="{lon:.6f}" hae="1500.0"'
           f' ce="10.0" le="10.0"/><detail><contact callsign="{callsign}" endpoint="*:-1:stcp"/>'
           f'<__group name="{team}" role="Team Member"/><track course="90.0" speed="1.5"/>'
           f'<__rallypoint_exercise id="{exercise}" unit="u{u}"{inject}/></detail></event>').encode()
    received = t + (3000 if i % 97 == 0 else 40)
    return StoredEvent(uid, typ, "m-s", t, t, t + 60_000, lat, lon, 1500.0, callsign, GROUPS, team, "s", xml,
                       received, True, exercise)


async def build_store(path: Path, events: int, units: int) -> float:
    """Append the rows in large batches; returns the seconds it took."""
    store = SqliteEventStore(path)
    started = time.perf_counter()
    try:
        for start in range(0, events, BATCH):
            batch = [row for i in range(start, min(events, start + BATCH)) if (row := _row(i, units)) is not None]
            await store.append(batch)
    finally:
        await store.close()
    return time.perf_counter() - started


async def in_process(path: Path, until_ms: int) -> dict[str, float | int]:
    """The report in this process: wall and CPU for the read and figures, then for the HTML."""
    store = open_event_store(f"sqlite:///{path}", path.parent)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        report = await build_report(store, None, since_ms=T0, until_ms=until_ms, exercise="bench")
    finally:
        await store.close()
    figures_wall, figures_cpu = time.perf_counter() - wall, time.process_time() - cpu
    html = render_html(report, generated_ms=until_ms)
    return {
        "rows_read": report.rows_read, "rows_kept": report.rows_kept, "links": len(report.links),
        "injects": len(report.injects), "lost": sum(link.lost for link in report.links),
        "late": sum(link.late for link in report.links), "figures_wall_s": round(figures_wall, 2),
        "figures_cpu_s": round(figures_cpu, 2), "total_wall_s": round(time.perf_counter() - wall, 2),
        "total_cpu_s": round(time.process_time() - cpu, 2), "html_bytes": len(html),
    }


def as_cli(path: Path, until_ms: int) -> float:
    """Wall seconds of ``rallypoint exercise report`` writing the HTML."""
    out = path.parent / "report.html"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "exercise", "report", "--since", _iso(T0),
                    "--until", _iso(until_ms), "--exercise", "bench", "--storage", f"sqlite:///{path}",
                    "--data-dir", str(path.parent), "--out", str(out)], check=True, capture_output=True)
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--db", type=Path, default=None, help="Store to build, or to reuse if it exists.")
    parser.add_argument("--cli", action="store_true", help="Also time the command in a child process.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aar-bench-") as tmp:
        path = args.db or Path(tmp) / "events.db"
        result: dict[str, float | int | str] = {"events_offered": args.events, "units": args.units}
        if not path.exists():
            result["build_s"] = round(await build_store(path, args.events, args.units), 1)
        until_ms = T0 + (args.events // args.units + 10) * 1000
        result.update(await in_process(path, until_ms))
        if args.cli:
            result["cli_wall_s"] = round(as_cli(path, until_ms), 2)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")


if __name__ == "__main__":
    asyncio.run(main())
