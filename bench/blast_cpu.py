"""Server CPU time per event in the blast scenario, for one or more source trees and the peers.

    .venv/bin/python bench/blast_cpu.py [--tree NAME=PATH ...] [--peers relay,taky] [--rounds 3]
                                        [--load stream|loadgen] [--events 50000] [--duration 10]
                                        [--events-per-ms 50] [--pin] [--keep]

One sender, 10 receivers, against every tree (``PATH/src`` put first on ``PYTHONPATH``; default:
this checkout, named ``rallypoint``) and every peer, alternating them ``--rounds`` times. The
figure of merit is the server process's CPU time (utime + stime of ``/proc/PID/stat``, all
threads, read before and after) divided by the events sent: it does not depend on how much of a
core a busy machine left the server, unlike the rates, which are printed beside it. ``events/s on
a core`` is 1 s divided by that CPU time.

``--load stream`` (default): the sender's ``--events`` position reports (the load tool's PLI, a
distinct remark each; 50 of them share each millisecond's time, as the load tool's templates,
which it renews as they age, or ``--events-per-ms 1``: a new time in every event, as in a device's
next report) are encoded before the clock starts and written with one ``sendall`` from a
thread, and the receivers only count them; so the server always finds a full socket buffer, reads
full slices and writes large batches, as in a blast on a quiet machine, however little CPU the
load side gets. CPU is read from the first byte sent until every receiver has every event.
``--pin``: every thread of the server on the last CPU and this process (the sender and the
receivers) on the others, so the server has exactly one core and shares it with nothing of the
load; its wall-clock events/s is then its throughput on one core, printed beside the CPU figure.
``--keep``: every server is started once and kept for the whole run, and the rounds blast them in
turn, in reverse order every other round. The machine's speed drifts over minutes and between
server starts; with ``--keep`` neighbouring blasts of the servers compared run seconds apart, on
the same processes, so the drift falls on all of them alike.
``--load loadgen``: ``rallypoint bench``'s blast (``compare.py``'s scenario, ``--duration`` s), whose
sender competes for the CPU with the server, so on a busy machine the server reads small slices
and pays per-read and per-write costs that a quiet machine spreads over many events.

Compare two commits with ``git worktree add /tmp/before <commit>`` and
``--tree before=/tmp/before --tree after=.``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import selectors
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import servers

sys.path.insert(0, str(servers.ROOT / "src"))

from rallypoint.loadgen import BenchSpec, run_bench
from rallypoint.loadgen.events import make_identity, xml_event

TICKS = os.sysconf("SC_CLK_TCK")
RECEIVERS = 10
Launcher = Callable[[], contextlib.AbstractContextManager[servers.Running]]


@dataclass(frozen=True)
class Run:
    """One blast: events sent, the fewest any receiver got, wall seconds, server CPU seconds."""

    sent: int
    delivered_min: int
    wall_s: float
    cpu_s: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@contextlib.contextmanager
def tree_server(path: Path) -> Iterator[servers.Running]:
    """Rallypoint from the sources under ``path`` (the interpreter and packages of this venv)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(path / "src"), saved or "") if p)
    try:
        # servers.rallypoint() runs the venv's console script, which imports from PYTHONPATH first.
        with servers.rallypoint() as running:
            yield running
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def loadgen_blast(running: servers.Running, duration: float, name: str) -> Run:
    """``rallypoint bench``'s blast scenario."""
    spec = BenchSpec(
        host="127.0.0.1", port=running.port, mode="blast", clients=2, rate=1.0, receivers=RECEIVERS,
        duration=duration, server_pid=running.pid, processes=1, proto="xml", warmup=30.0,
        run_id=f"cpu{name[:8]}",
    )  # fmt: skip
    before, started = cpu_seconds(running.pid), time.monotonic()
    report = run_bench(spec)
    delivered = report.delivered // RECEIVERS
    return Run(report.sent, delivered, time.monotonic() - started, cpu_seconds(running.pid) - before)


class _Counter:
    """Counts occurrences of ``needle`` in a receiver's stream, across read boundaries."""

    def __init__(self, sock: socket.socket, needle: bytes) -> None:
        self.sock = sock
        self.needle = needle
        self.count = 0
        self._tail = b""

    def read(self, buf: bytearray) -> bool:
        n = self.sock.recv_into(buf)
        if n == 0:
            return False
        data = self._tail + bytes(buf[:n])
        self.count += data.count(self.needle)
        keep = len(self.needle) - 1
        self._tail = data[-keep:] if keep else b""
        return True


def _read_until(counters: list[_Counter], target: int, deadline: float, stall_s: float) -> None:
    """Read every receiver until each counted ``target``, the deadline passes or nothing arrives for ``stall_s``."""
    buf = bytearray(1 << 20)
    with selectors.DefaultSelector() as sel:
        for counter in counters:
            sel.register(counter.sock, selectors.EVENT_READ, counter)
        while any(c.count < target for c in counters) and time.monotonic() < deadline:
            ready = sel.select(timeout=stall_s)
            if not ready:
                return
            for key, _ in ready:
                if not key.data.read(buf):
                    sel.unregister(key.fileobj)


def stream_blast(running: servers.Running, events: int, name: str, per_ms: int = 50) -> Run:
    """The sender's events written in one go; receivers count them (see the module docstring)."""
    run = f"cpu{name[:8]}"
    sender_id = make_identity(0, run)
    now = int(time.time() * 1000)
    # Times move on by a millisecond every ``per_ms`` events (as the load tool's templates do, which
    # it renews as they age); ``per_ms=1``: a new time in every event, as a device's next report.
    stream = b"".join(xml_event(sender_id, now + i // per_ms, f"rpbench@{i:019d}") for i in range(events))
    needle = f'uid="{sender_id.uid}"'.encode()
    socks = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(RECEIVERS + 1)]
    try:
        sender, receivers = socks[0], socks[1:]
        for i, sock in enumerate(receivers, start=1):
            sock.sendall(xml_event(make_identity(i, run), now, "rpbench warmup"))
        counters = [_Counter(sock, needle) for sock in receivers]
        # Warm-up: the sender's own SA, repeated until every receiver has it (registered everywhere).
        deadline = time.monotonic() + 30
        while any(c.count == 0 for c in counters):
            if time.monotonic() > deadline:
                raise servers.ServerUnavailable("receivers never got the sender's warm-up report")
            sender.sendall(xml_event(sender_id, now, "rpbench warmup"))
            _read_until(counters, 1, time.monotonic() + 1.0, 1.0)
        _read_until(counters, 10**9, time.monotonic() + 0.5, 0.5)  # let late warm-ups arrive
        base = [c.count for c in counters]
        before, started = cpu_seconds(running.pid), time.monotonic()
        writer = threading.Thread(target=sender.sendall, args=(stream,), daemon=True)
        writer.start()
        for counter, seen in zip(counters, base, strict=True):
            counter.count -= seen
        _read_until(counters, events, time.monotonic() + 900, 30.0)
        wall, cpu = time.monotonic() - started, cpu_seconds(running.pid) - before
        writer.join(timeout=5)
        return Run(events, min(c.count for c in counters), wall, cpu)
    finally:
        for sock in socks:
            sock.close()


def pin(pid: int, cpus: list[int]) -> None:
    """Every thread of ``pid`` on the last of ``cpus``, this process's (and the threads it starts) on the others."""
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least two CPUs")
    server_cpu = {cpus[-1]}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), server_cpu)
    os.sched_setaffinity(0, set(cpus[:-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description="Server CPU per blast event, trees and peers alternated.")
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    parser.add_argument("--peers", default="relay,taky", help="peer servers to run too ('' for none)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", choices=("stream", "loadgen"), default="stream")
    parser.add_argument("--events", type=int, default=50_000, help="events the sender writes (stream)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured window in seconds (loadgen)")
    parser.add_argument("--pin", action="store_true", help="the server on one CPU, the load on the others")
    parser.add_argument(
        "--events-per-ms", type=int, default=50, help="stream events sharing one time (1: a new time in every event)"
    )
    parser.add_argument(
        "--keep", action="store_true",
        help="start every server once; rounds blast them in turn (order reversed every other round)",
    )
    args = parser.parse_args()
    servers.raise_fd_limit()
    cpus = sorted(os.sched_getaffinity(0))
    launchers: dict[str, Launcher] = {}
    for peer in filter(None, args.peers.split(",")):
        launchers[peer] = servers.LAUNCHERS[peer]
    for item in args.tree or [f"rallypoint={servers.ROOT}"]:
        name, _, path = item.partition("=")
        launchers[name] = functools.partial(tree_server, Path(path).resolve())
    per_event: dict[str, list[float]] = {name: [] for name in launchers}
    rates: dict[str, list[float]] = {name: [] for name in launchers}
    print(f"load: {args.load}, {RECEIVERS} receivers, " + (f"{args.events:,} events" if args.load == "stream"
          else f"{args.duration:g} s"))  # fmt: skip
    print("| server | round | events sent | fewest received | wall s | events/s | server CPU s | CPU per event us |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with contextlib.ExitStack() as kept:
        started = {name: keep(kept, launch, args.pin, cpus) for name, launch in launchers.items()} if args.keep else {}
        for round_no in range(1, args.rounds + 1):
            names = list(launchers) if round_no % 2 or not args.keep else list(reversed(launchers))
            for name in names:
                run = one_round(args, name, launchers[name], started.get(name), round_no, cpus)
                if run is not None:
                    record(name, run, round_no, per_event, rates)
    print("\n| server | CPU per event, each round | median | events/s on one full core | wall events/s in, median |")
    print("|---|---|---:|---:|---:|")
    for name, values in per_event.items():
        if not values:
            continue
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.1f}" for v in values)
        wall = statistics.median(rates[name])
        print(f"| {name} | {rounds} us | {median:.1f} us | {1e6 / median:,.0f} | {wall:,.0f} |")
    return 0


def keep(stack: contextlib.ExitStack, launch: Launcher, pin_it: bool, cpus: list[int]) -> servers.Running | None:
    """A server started for the whole run (``--keep``), or None when it cannot start."""
    try:
        running = stack.enter_context(launch())
    except servers.ServerUnavailable as exc:
        print(f"unavailable: {exc}")
        return None
    if pin_it:
        pin(running.pid, cpus)
    return running


def one_round(
    args: argparse.Namespace, name: str, launch: Launcher, running: servers.Running | None, round_no: int,
    cpus: list[int],
) -> Run | None:
    """One blast of ``name``: on its kept server, or on one started for this round."""
    if args.keep and running is None:
        return None
    try:
        with contextlib.ExitStack() as stack:
            if running is None:
                running = stack.enter_context(launch())
                if args.pin:
                    pin(running.pid, cpus)
            if args.load == "stream":
                return stream_blast(running, args.events, f"{name}{round_no}", args.events_per_ms)
            return loadgen_blast(running, args.duration, f"{name}{round_no}")
    except servers.ServerUnavailable as exc:
        print(f"| {name} | {round_no} | unavailable: {exc} | | | | | |")
        return None


def record(
    name: str, run: Run, round_no: int, per_event: dict[str, list[float]], rates: dict[str, list[float]]
) -> None:
    """Print one round's row and keep its figures."""
    us = run.cpu_s / run.sent * 1e6 if run.sent else float("nan")
    per_event[name].append(us)
    rates[name].append(run.sent / run.wall_s)
    print(f"| {name} | {round_no} | {run.sent:,} | {run.delivered_min:,} | {run.wall_s:.1f} "
          f"| {run.sent / run.wall_s:,.0f} | {run.cpu_s:.2f} | {us:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
