"""Server memory per idle connection: connect many clients that each send one SA, then sit.

    .venv/bin/python bench/idle_memory.py --server relay|taky|rallypoint [--clients 2000]
    .venv/bin/python bench/idle_memory.py --host H --port N --server-pid PID [--clients 2000]

Reports the server's RSS before connecting, after every client is connected and its SA has
been fanned out (RSS stable), and the difference per connection. Clients keep reading, so the
server's send buffers drain and are not mistaken for per-connection state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import psutil
import servers

sys.path.insert(0, str(servers.ROOT / "src"))

from rallypoint.loadgen.client import BenchConnection, NegotiationFailed, Tally, open_connection
from rallypoint.loadgen.events import TemplateSet, make_identity
from rallypoint.loadgen.report import LatencySampler

CONNECT_CONCURRENCY = 100
SETTLE_STEP_S = 1.0
SETTLE_MAX_S = 120.0
_MB = 1024 * 1024


def _rss_mb(proc: psutil.Process) -> float:
    return float(proc.memory_info().rss) / _MB


async def _settle(proc: psutil.Process, tally: Tally, expected: int) -> float:
    """Wait until every SA is delivered (or deliveries stop) and RSS stops moving."""
    deadline = time.monotonic() + SETTLE_MAX_S
    last_delivered, last_rss = -1, -1.0
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_STEP_S)
        rss = _rss_mb(proc)
        quiet = tally.delivered >= expected or tally.delivered == last_delivered
        if quiet and abs(rss - last_rss) < 0.5:
            return rss
        last_delivered, last_rss = tally.delivered, rss
    return _rss_mb(proc)


async def measure(host: str, port: int, pid: int, clients: int, proto: str) -> dict[str, Any]:
    proc = psutil.Process(pid)
    before = _rss_mb(proc)
    tally = Tally(LatencySampler(cap=16))
    identities = [make_identity(i, "idle") for i in range(clients)]
    templates = TemplateSet(identities, proto)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    conns: list[BenchConnection] = []
    failed = 0

    async def one(index: int) -> None:
        nonlocal failed
        conn = BenchConnection(identities[index], proto, tally)
        async with gate:
            try:
                await open_connection(conn, host, port, None, 30.0)
            except (OSError, TimeoutError, NegotiationFailed):
                failed += 1
                conn.close()
                return
        conns.append(conn)

    started = time.monotonic()
    async with asyncio.TaskGroup() as tg:
        for i in range(clients):
            tg.create_task(one(i))
    connected = len(conns)
    # Everyone is connected before anyone speaks, so each SA can reach every other client.
    now_ms = time.time_ns() // 1_000_000
    for conn in conns:
        conn.write(templates.warmup_event(conn.ident, now_ms))
    after = await _settle(proc, tally, connected * (connected - 1))
    result = {
        "clients": clients,
        "connected": connected,
        "connect_failures": failed,
        "sa_delivered": tally.delivered,
        "sa_expected": connected * (connected - 1),
        "rss_mb_before": round(before, 1),
        "rss_mb_after": round(after, 1),
        "rss_kb_per_connection": round((after - before) * 1024 / connected, 1) if connected else None,
        "seconds": round(time.monotonic() - started, 1),
    }
    for conn in conns:
        conn.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="Server RSS per idle connection.")
    parser.add_argument("--server", choices=sorted(servers.LAUNCHERS), help="start this server locally")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--proto", default="xml", choices=("xml", "protobuf"))
    args = parser.parse_args()
    servers.raise_fd_limit()
    run: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    if args.server:
        with servers.LAUNCHERS[args.server]() as running:
            result = run(measure("127.0.0.1", running.port, running.pid, args.clients, args.proto))
        result["server"] = args.server
    elif args.port and args.server_pid:
        result = run(measure(args.host, args.port, args.server_pid, args.clients, args.proto))
    else:
        parser.error("give --server, or --port and --server-pid")
    out = servers.BENCH / "results" / f"idle-memory-{args.server or 'external'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
