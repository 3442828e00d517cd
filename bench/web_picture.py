"""The web picture in Chromium: load to first symbols, frames per second, server CPU per browser.

Run: .venv/bin/python bench/web_picture.py [--units 500] [--moving 200] [--seconds 20] [--json]

A real server is started (``rallypoint serve``, SQLite, loopback HTTP and plain CoT) and one TCP client
reports every unit (items a-f-G-U-C with a callsign, spread over about 20 km, so the fitted view shows
them unclustered). Debian's Chromium (software WebGL, SwiftShader) opens ``/#connect`` at 1024x768.

1. Frames: ``--moving`` units each move once a second, and they are the whole picture (this phase runs
   first, before any other unit is reported); the page counts ``requestAnimationFrame`` callbacks for
   ``--seconds``. Peer in the same run: the page without units repainting the base map on every frame,
   the most this machine's software WebGL paints at its current load. Target: 30 or more per second.
2. Load: ``--units`` units already reported; from navigation start to the first symbols handed to the
   map (the snapshot holds every unit, checked), and to the map's first ``idle`` after them (every
   symbol drawn); and the page's main-thread
   task and script time until the first symbols (Chrome's Performance metrics), which a busy machine
   inflates far less than the wall clock. Target: under 2 s.
3. Server CPU per browser: ``--units`` units at 1 Hz; the server's CPU (user + system, /proc) over
   ``--seconds`` without a browser and then with one connected; the difference, as a share of one core,
   is what one browser's live feed costs. Target: under 10 %.

CPU time is read from /proc, which other work on a shared machine does not inflate; wall-clock figures
(load, frames) are inflated by it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.browser import WEBGL_ARGS, find_chromium  # noqa: E402

TARGET_LOAD_S = 2.0
TARGET_FPS = 30.0
TARGET_CPU_SHARE = 0.10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def report(i: int, t: float) -> bytes:
    """Unit ``i`` at time ``t`` (s): on a small circle around its own place, so it moves."""
    now = datetime.now(UTC)
    lat = 39.0 + (i // 25) * 0.01 + 0.002 * math.sin(t / 10 + i)
    lon = -120.0 + (i % 25) * 0.01 + 0.002 * math.cos(t / 10 + i)
    return (f'<event version="2.0" uid="bench-{i}" type="a-f-G-U-C" how="m-g" time="{iso(now)}" '
            f'start="{iso(now)}" stale="{iso(now + timedelta(minutes=5))}"><point lat="{lat:.6f}" '
            f'lon="{lon:.6f}" hae="0" ce="10" le="10"/><detail><contact callsign="U{i:03d}"/></detail></event>'
            ).encode()


class Feeder:
    """Reports units 0..n-1 once a second each, evenly spread over the second, until stopped."""

    def __init__(self, sock: socket.socket, count: int) -> None:
        self.sock, self.count = sock, count
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        sent = 0
        while not self.stop.is_set():
            due = int((time.monotonic() - start) * self.count)
            if due > sent:
                self.sock.sendall(b"".join(report(i % self.count, time.monotonic()) for i in range(sent, due)))
                sent = due
            self.stop.wait(0.01)


def once(sock: socket.socket, count: int) -> None:
    sock.sendall(b"".join(report(i, 0.0) for i in range(count)))


def bench(units: int, moving: int, seconds: float, as_json: bool) -> dict[str, object]:
    executable = find_chromium()
    if executable is None:
        raise SystemExit("no Chromium: install the Debian package `chromium`")
    results: dict[str, object] = {"units": units, "moving": moving, "seconds": seconds}
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        http, cot = free_port(), free_port()
        cmd = [sys.executable, "-m", "rallypoint.cli.main", "serve", "--data-dir", tmp, "--tls-port", "0",
               "--api-port", "0", "--enroll-port", "0", "--federation-port", "0", "--udp-port", "0",
               "--http-port", str(http), "--cot-port", str(cot)]
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115 (closed with the directory's run)
        # One TCP client stands in for every unit, so the per-connection rate limit (100 events/s, made for
        # one device) is lifted; the per-address limit stays.
        env = {**os.environ, "RALLYPOINT_MAX_EVENTS_PER_S": "0"}
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while "rallypoint ready" not in (Path(tmp) / "server.log").read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)  # a benchmark's start-up wait, not a test's synchronisation
            base = f"http://127.0.0.1:{http}"
            with socket.create_connection(("127.0.0.1", cot)) as sock, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(executable), args=list(WEBGL_ARGS))
                # 1. Frames per second with `moving` units moving (the server holds only those yet, so the
                # picture is exactly them), and the peer: the same page with no units, repainting the base
                # map on every frame (what software WebGL on this machine, with its current load, can paint).
                fps_script = """(ms) => new Promise((resolve) => {
                        let frames = 0; const t0 = performance.now();
                        const tick = () => { frames++; if (performance.now() - t0 < ms) requestAnimationFrame(tick);
                                             else resolve(frames * 1000 / (performance.now() - t0)); };
                        requestAnimationFrame(tick);
                    })"""
                page = browser.new_page(viewport={"width": 1024, "height": 768})
                page.goto(f"{base}/")
                page.wait_for_function("() => rallypoint.view.map.loaded()", timeout=60_000)
                page.evaluate("() => rallypoint.view.map.jumpTo({center: [-119.88, 39.1], zoom: 11})")
                page.evaluate("""() => { const m = rallypoint.view.map;
                                         const again = () => { m.triggerRepaint(); requestAnimationFrame(again); };
                                         requestAnimationFrame(again); }""")
                results["fps_repaint_peer"] = round(page.evaluate(fps_script, seconds * 1000), 1)
                page.close()
                page = browser.new_page(viewport={"width": 1024, "height": 768})
                page.goto(f"{base}/?drop_s=1#connect")
                with Feeder(sock, moving):
                    page.wait_for_function("() => rallypoint.state.firstSymbolsAt !== null", timeout=60_000)
                    fps = page.evaluate(fps_script, seconds * 1000)
                    results["fps_units_in_page"] = page.evaluate("() => rallypoint.picture.units.size")
                results["fps_moving"] = round(fps, 1)
                page.close()
                # 2. Load to first symbols (the moving units' last reports are overwritten by these).
                once(sock, units)
                time.sleep(1.0)  # let the server take every report before the page asks for the picture
                page = browser.new_page(viewport={"width": 1024, "height": 768})
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                page.goto(f"{base}/#connect")
                page.wait_for_function("() => rallypoint.state.firstSymbolsAt !== null", timeout=60_000)
                # The page's main-thread task time so far: CPU-like, unlike the wall clock of a busy machine.
                metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                results["load_main_thread_task_s"] = round(metrics.get("TaskDuration", 0.0), 3)
                results["load_script_s"] = round(metrics.get("ScriptDuration", 0.0), 3)
                idle = page.evaluate("""() => new Promise((resolve) => {
                    const m = rallypoint.view.map;
                    m.once('idle', () => resolve(performance.now()));
                    m.triggerRepaint();
                })""")
                first = page.evaluate("() => rallypoint.state.firstSymbolsAt")
                drawn = page.evaluate("() => rallypoint.picture.units.size")
                results["load_first_symbols_s"] = round(first / 1000, 3)
                results["load_all_drawn_s"] = round(idle / 1000, 3)
                results["load_units_in_page"] = drawn
                page.close()
                # 3. Server CPU per connected browser, units at 1 Hz.
                with Feeder(sock, units):
                    time.sleep(2)  # warm: the feed at its steady rate
                    c0 = server_cpu_s(proc.pid)
                    time.sleep(seconds)
                    without = (server_cpu_s(proc.pid) - c0) / seconds
                    page = browser.new_page(viewport={"width": 1024, "height": 768})
                    page.goto(f"{base}/#connect")
                    page.wait_for_function("() => rallypoint.state.firstSymbolsAt !== null", timeout=60_000)
                    c0 = server_cpu_s(proc.pid)
                    time.sleep(seconds)
                    with_browser = (server_cpu_s(proc.pid) - c0) / seconds
                    received = page.evaluate("() => rallypoint.picture.units.size")
                results["server_core_share_feed_only"] = round(without, 4)
                results["server_core_share_with_browser"] = round(with_browser, 4)
                results["server_core_share_per_browser"] = round(with_browser - without, 4)
                results["units_in_browser"] = received
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
    results["fps_share_of_peer"] = round(float(results["fps_moving"]) / float(results["fps_repaint_peer"]), 2)  # type: ignore[arg-type]
    results["load_average_1min"] = round(os.getloadavg()[0], 1)
    results["targets_met"] = {
        # First symbols with every unit in the page's picture (the snapshot is one message).
        "load": float(results["load_first_symbols_s"]) < TARGET_LOAD_S  # type: ignore[arg-type]
        and results["load_units_in_page"] == units,
        "fps": float(results["fps_moving"]) >= TARGET_FPS,  # type: ignore[arg-type]
        "server_cpu": float(results["server_core_share_per_browser"]) < TARGET_CPU_SHARE,  # type: ignore[arg-type]
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--moving", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = bench(args.units, args.moving, args.seconds, args.json)
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:34s} {value}")


if __name__ == "__main__":
    main()
