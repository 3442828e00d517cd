"""The capacity model's coefficients, fitted to bench/nodes.py's results.

    .venv/bin/python bench/capacity.py        # reads bench/results/nodes<N>-<scenario>.json

Each node of each run gives one equation: its CPU during the run (less what it spends idle) is

    events_in * e  +  bus_messages_from_other_nodes * r  +  deliveries * d

with ``e`` the CPU per event a client sends it (parse, validate, route, publish, encode for NATS),
``r`` per bus message of another node (decode, dispatch, the features every node runs) and ``d``
per delivery to a client of this node (outbox, encode, write) in fan-out (200 senders at 2 Hz:
a few events per write). A blast delivery (one sender: a receiver's deliveries go out many per
write) costs too little to separate from the noise of a shared machine (a free fit gives about
0 +- 1 us), so blast deliveries are counted inside ``e`` and ``r``. Clients are dealt round-robin
(client i on node i mod N, the blast sender is client 0); in a multi-node blast the messages
that crossed are NATS's ``in_msgs`` (the origin sheds positions it cannot send in time).
Least squares over all equations; prints the coefficients and each equation's fit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def equations() -> tuple[list[list[float]], list[float], list[str]]:
    """Rows of [events in, bus messages of other nodes, fan-out deliveries]."""
    rows: list[list[float]] = []
    cpu: list[float] = []
    names: list[str] = []
    for nodes in (1, 2, 3):
        for scenario in ("fanout200", "blast"):
            path = RESULTS / f"nodes{nodes}-{scenario}.json"
            if not path.exists():
                continue
            run = json.loads(path.read_text())
            idle = run.get("node_idle_cpu_s") or [0.0] * nodes
            for i, (used, rest) in enumerate(zip(run["node_cpu_s"], idle, strict=True)):
                if scenario == "fanout200":
                    # Warm-up SAs: one per client, delivered to every other client.
                    clients = run["clients"]
                    sent = run["sent"] + clients
                    delivered = run["delivered"] + clients * (clients - 1)
                    rows.append([sent / nodes, sent * (nodes - 1) / nodes, delivered / nodes])
                else:
                    crossed = min(run["nats"]["in_msgs"], run["sent"]) if nodes > 1 else 0
                    rows.append([run["sent"] if i == 0 else 0.0, 0.0 if i == 0 else crossed, 0.0])
                cpu.append((used - rest) * 1e6)
                names.append(f"{nodes} node(s) {scenario} node {i + 1}")
    return rows, cpu, names


def main() -> int:
    rows, cpu, names = equations()
    if len(rows) < 4:
        print("run bench/nodes.py first")
        return 1
    a, b = np.array(rows), np.array(cpu)
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    e, r, d_fanout = coef
    print(f"e  per event in                      {e:7.1f} us")
    print(f"r  per bus message of another node   {r:7.1f} us")
    print(f"d  per delivery, fan-out 200 x 2 Hz  {d_fanout:7.2f} us")
    for name, row, got in zip(names, a, b, strict=True):
        model = row @ coef
        print(f"  {name:32} measured {got / 1e6:6.2f} s  model {model / 1e6:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
