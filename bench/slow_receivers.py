"""Healthy receivers next to stalled ones: does a client that stops reading hurt everybody else?

Two runs against a fresh Rallypoint each, same load:

* ``baseline``: ``clients - stalled`` bench clients (``rallypoint.loadgen``) at ``--rate`` Hz plus
  ``stalled`` raw sockets that read and discard everything;
* ``stalled``: the same, but the raw sockets never read (small ``SO_RCVBUF``), so the server's
  socket buffers fill, asyncio pauses writing and their outboxes take over.

For the healthy clients it reports latency p50/p95/p99 and delivery ratio, plus server RSS, and
whether and when the server disconnected the stalled ones (``rallypoint_sessions_closed_total
{reason="slow_receiver"}``, polled once a second). Prints a markdown table.

    .venv/bin/python bench/slow_receivers.py --clients 200 --rate 2 --duration 20
    .venv/bin/python bench/slow_receivers.py --outbox-max-items 16 --slow-timeout 5   # force disconnects
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

import servers  # noqa: E402

from rallypoint.loadgen.events import make_identity, xml_event  # noqa: E402
from rallypoint.loadgen.report import BenchReport, to_json  # noqa: E402
from rallypoint.loadgen.run import run_bench  # noqa: E402
from rallypoint.loadgen.spec import BenchSpec  # noqa: E402

STALLED_RCVBUF = 4096
_METRIC = re.compile(r"^(rallypoint_[a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$")


@dataclass
class Outcome:
    scenario: str
    report: BenchReport
    stalled: int
    slow_closed: int
    first_close_s: float | None
    outbox: dict[str, float] = field(default_factory=dict)


def http_port_of(log: Path) -> int:
    """The HTTP port from the server's ``rallypoint ready`` JSON log line."""
    for line in log.read_text(errors="replace").splitlines():
        if "rallypoint ready" in line:
            return int(json.loads(line)["ports"]["http"])
    raise RuntimeError(f"no ready line in {log}")


def scrape(http_port: int) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} for rallypoint_* series."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def slow_closed(metrics: dict[str, float]) -> int:
    return int(metrics.get('rallypoint_sessions_closed_total{reason="slow_receiver"}', 0))


@contextlib.contextmanager
def raw_clients(port: int, count: int, *, reading: bool) -> Iterator[list[socket.socket]]:
    """``count`` plain sockets, each announcing itself with one SA; read and discarded if ``reading``."""
    socks: list[socket.socket] = []
    stop = threading.Event()
    reader: threading.Thread | None = None
    try:
        for i in range(count):
            s = socket.socket()
            if not reading:
                # Before connect, so the advertised window stays small and the server backs up fast.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
            s.connect(("127.0.0.1", port))
            s.sendall(xml_event(make_identity(900_000 + i, "stalled"), int(time.time() * 1000), "idle"))
            socks.append(s)
        if reading:
            reader = threading.Thread(target=_discard, args=(socks, stop), daemon=True)
            reader.start()
        yield socks
    finally:
        stop.set()
        if reader is not None:
            reader.join(timeout=5)
        for s in socks:
            s.close()


def _discard(socks: list[socket.socket], stop: threading.Event) -> None:
    live = list(socks)
    while live and not stop.is_set():
        ready, _, _ = select.select(live, [], [], 0.2)
        for s in ready:
            try:
                if not s.recv(1 << 16):
                    live.remove(s)
            except OSError:
                live.remove(s)


def run_scenario(name: str, args: argparse.Namespace) -> Outcome:
    stalled_n = round(args.clients * args.stalled_fraction)
    healthy_n = args.clients - stalled_n
    with servers.rallypoint() as srv:
        http_port = http_port_of(srv.log)
        with raw_clients(srv.port, stalled_n, reading=name == "baseline"):
            started = time.monotonic()
            first_close: list[float] = []
            done = threading.Event()

            def poll() -> None:
                while not done.wait(1.0):
                    with contextlib.suppress(OSError):
                        if slow_closed(scrape(http_port)) and not first_close:
                            first_close.append(time.monotonic() - started)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            spec = BenchSpec(
                host="127.0.0.1", port=srv.port, clients=healthy_n, rate=args.rate, duration=args.duration,
                server_pid=srv.pid, run_id=name, processes=args.processes,
            )  # fmt: skip
            report = run_bench(spec)
            done.set()
            poller.join(timeout=5)
            metrics = scrape(http_port)
    outbox = {k.removeprefix("rallypoint_"): v for k, v in metrics.items() if k.startswith("rallypoint_outbox")}
    return Outcome(name, report, stalled_n, slow_closed(metrics), first_close[0] if first_close else None, outbox)


def table(outcomes: list[Outcome], args: argparse.Namespace) -> str:
    head = (
        f"{args.clients} clients x {args.rate:g} Hz x {args.duration:g} s, "
        f"{outcomes[0].stalled} of them stalled (never read, SO_RCVBUF {STALLED_RCVBUF}) in the `stalled` run"
    )
    rows = [
        head,
        "",
        "| run | healthy clients | delivery ratio | p50 ms | p95 ms | p99 ms | server RSS max MB "
        "| stalled disconnected (slow_receiver) | first disconnect after | outbox coalesced / dropped |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        r = o.report
        lat = r.latency
        rss = r.server.rss_mb_max if r.server is not None else None
        when = f"{o.first_close_s:.0f} s" if o.first_close_s is not None else "-"
        # Counter families are exposed with a ``_total`` suffix.
        coalesced = int(o.outbox.get("outbox_coalesced_total", 0))
        dropped = int(o.outbox.get("outbox_dropped_total", 0))
        rows.append(
            f"| {o.scenario} | {r.connected} | {r.delivery_ratio:.4f} | {_ms(lat.p50_ms)} | {_ms(lat.p95_ms)} "
            f"| {_ms(lat.p99_ms)} | {_ms(rss)} | {o.slow_closed} of {o.stalled} | {when} | {coalesced} / {dropped} |"
        )
    return "\n".join(rows)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--stalled-fraction", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--outbox-max-items", type=int, help="server outbox bound (env RALLYPOINT_OUTBOX_MAX_ITEMS)")
    parser.add_argument("--slow-timeout", type=float, help="RALLYPOINT_SLOW_RECEIVER_TIMEOUT_S for the server")
    parser.add_argument("--scenarios", default="baseline,stalled")
    parser.add_argument("--json", action="store_true", help="also print the raw reports as JSON lines")
    args = parser.parse_args()
    # The launcher passes our environment on to the server.
    if args.outbox_max_items is not None:
        os.environ["RALLYPOINT_OUTBOX_MAX_ITEMS"] = str(args.outbox_max_items)
    if args.slow_timeout is not None:
        os.environ["RALLYPOINT_SLOW_RECEIVER_TIMEOUT_S"] = str(args.slow_timeout)
    servers.raise_fd_limit()
    outcomes = [run_scenario(name, args) for name in args.scenarios.split(",")]
    print(table(outcomes, args))
    if args.json:
        for o in outcomes:
            print(json.dumps({"scenario": o.scenario, "slow_closed": o.slow_closed, "first_close_s": o.first_close_s,
                              "outbox": o.outbox, "report": json.loads(to_json(o.report))}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
