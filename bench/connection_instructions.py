"""Instructions per event through ``CotConnection``, counted by valgrind: a figure a busy machine does not move.

    .venv/bin/python bench/connection_instructions.py [--tree NAME=PATH ...] [--events 5000]

For each source tree (``PATH/src`` first on the path; default: this checkout) and each stream (the
load tool's PLI as ``blast_cpu.py`` sends it, and ``decode_stages.py``'s resent ATAK PLI, spot
marker and group chat), a child interpreter frames and decodes the stream in 32 KiB reads under
``valgrind --tool=callgrind``, once with 100 events and once with 100 + ``--events``; the
difference divided by ``--events`` is the instructions one event costs (start-up and the first,
parsed events cancel out). CPU time on a shared machine swings by tens of percent from one run to
the next; instruction counts repeat to a few hundred per event. Needs ``valgrind`` (apt).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import decode_stages
import servers

sys.path.insert(0, str(servers.ROOT / "src"))

from rallypoint.loadgen.events import make_identity, xml_event

BASE = 100
# Run in the child, with the tree's sources first on sys.path: frame and decode the stream file.
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from rallypoint.protocol.connection import CotConnection, NEED_DATA
from rallypoint.protocol.limits import Limits
data = open(sys.argv[2], "rb").read()
conn = CotConnection(Limits())
for start in range(0, len(data), 32768):
    conn.receive_data(data[start : start + 32768])
    while conn.next_event() is not NEED_DATA:
        pass
"""
_COLLECTED = re.compile(rb"Collected : (\d+)")


def streams(count: int) -> dict[str, list[bytes]]:
    """``count`` events of each stream, as devices (and the load tool) resend them."""
    ident = make_identity(0, "instr")
    out = {"load tool PLI": [xml_event(ident, 1_780_000_000_000 + 20 * i, f"rpbench@{i:019d}") for i in range(count)]}
    for name in ("ATAK PLI", "ATAK spot marker", "ATAK group chat"):
        out[name] = decode_stages.variants((decode_stages.SAMPLES / decode_stages.NAMES[name]).read_bytes(), count)
    return out


def instructions(tree: Path, stream: Path) -> int:
    """Instructions valgrind counts for the child on ``stream``."""
    with tempfile.TemporaryDirectory(prefix="rp-instr-") as tmp:
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", sys.executable, "-c", CHILD,
             str(tree / "src"), str(stream)],
            capture_output=True, check=True,
        )  # fmt: skip
    found = _COLLECTED.search(result.stderr)
    if found is None:
        raise RuntimeError(result.stderr.decode(errors="replace")[-500:])
    return int(found[1])


def main() -> int:
    parser = argparse.ArgumentParser(description="Instructions per event through CotConnection (valgrind).")
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a source tree (repeatable)")
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    trees = [item.partition("=")[::2] for item in args.tree] or [("rallypoint", str(servers.ROOT))]
    every = streams(BASE + args.events)
    print("| stream | bytes | " + " | ".join(name for name, _ in trees) + " |")
    print("|---|---:|" + "---:|" * len(trees))
    with tempfile.TemporaryDirectory(prefix="rp-streams-") as tmp:
        for name, events in every.items():
            short, full = Path(tmp) / "short", Path(tmp) / "full"
            short.write_bytes(b"".join(events[:BASE]))
            full.write_bytes(b"".join(events))
            cells = []
            for _, path in trees:
                tree = Path(path).resolve()
                cells.append(f"{(instructions(tree, full) - instructions(tree, short)) / args.events:,.0f}")
            print(f"| {name} | {len(events[BASE])} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
