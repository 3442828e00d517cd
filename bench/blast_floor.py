"""How far the single-core blast target is: CPU per event with parts of the work taken away.

    .venv/bin/python bench/blast_floor.py [--rounds 3] [--events 60000] [--mypyc]

The blast of ``blast_cpu.py`` (one sender, 10 receivers, every event delivered to all 10) against
copies of this checkout's ``src/`` in a temporary directory, each with one part of the work
removed by a textual patch, alternated ``--rounds`` times:

- ``as is``: the checkout unchanged.
- ``decoding free``: ``XmlDecoder.decode`` returns the event it decoded for an earlier frame of the
  same length and the same 70 bytes from ``uid="`` on (in this stream that is every frame but one
  in 50; the others are decoded as usual). Framing, routing, the picture, storage and delivery run
  as usual on the event.
- ``decoding free, no storage``: the same, and no history row is written (no writer thread work).
- ``decoder compiled`` (``--mypyc``): the decoding modules (``protocol/xml_template.py``, ``xml_shape.py``,
  ``xml_codec.py``, ``framing.py``, ``timefmt.py``, ``validate.py``, ``detail.py``, ``xmlsafe.py``)
  compiled to C extension modules by mypyc (part of mypy, already a test dependency); about 15 s to
  build.

Neither patch is a way to run the server: they show how much of the CPU per event each part costs,
and so what is left if it cost nothing. Figures are CPU time of the server's threads per event sent
(``/proc/PID/task/*/stat``), the busiest thread (the event loop) apart from the rest (mostly the
SQLite writer), as medians over the rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import blast_cpu
import servers

TICKS = os.sysconf("SC_CLK_TCK")
_DECODE_CALL = "        return _decode(data, self._limits, self._parser, self._codes, self._shapes)\n"
_DECODE_MEMO = """\
        at = data.find(b'uid="')
        key = (len(data), data[at : at + 70])
        hit = _FLOOR_MEMO.get(key)
        if hit is None:
            hit = _FLOOR_MEMO[key] = _decode(data, self._limits, self._parser, self._codes, self._shapes)
        return hit
"""
_STORE_CALL = "            writer.submit(self._stored(envelope, pictured))\n"
_COMPILED = ("xml_template", "xml_shape", "xml_codec", "framing", "timefmt", "validate", "detail", "xmlsafe")


def _patch(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"{path}: the text to patch is not there once; update blast_floor.py")
    path.write_text(text.replace(old, new))


def decoding_free(src: Path) -> None:
    """Memoise ``XmlDecoder.decode`` per (length, uid and what follows it)."""
    codec = src / "rallypoint/protocol/xml_codec.py"
    _patch(codec, _DECODE_CALL, _DECODE_MEMO)
    codec.write_text(codec.read_text() + "\n_FLOOR_MEMO: dict[object, CotEvent] = {}\n")


def no_storage(src: Path) -> None:
    """Write no history row."""
    _patch(src / "rallypoint/services/ingest.py", _STORE_CALL, "            pass\n")


def compiled_decoder(src: Path) -> None:
    """Compile the decoding modules with mypyc, in place (extension modules beside the sources)."""
    tree = src.parent
    shutil.copy(servers.ROOT / "pyproject.toml", tree / "pyproject.toml")
    modules = [f"src/rallypoint/protocol/{name}.py" for name in _COMPILED]
    mypyc = Path(sys.executable).with_name("mypyc")
    subprocess.run(
        [str(mypyc), "--config-file", "pyproject.toml", *modules], cwd=tree, check=True, stdout=subprocess.DEVNULL
    )


def build(base: Path, name: str, patches: list[Callable[[Path], None]]) -> Path:
    """A copy of this checkout's ``src/`` under ``base/name`` with ``patches`` applied; the tree path."""
    tree = base / name
    shutil.copytree(servers.ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for patch in patches:
        patch(tree / "src")
    return tree


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of ``pid`` (utime + stime)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            out[task.name] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def measure(tree: Path, events: int) -> tuple[float, float, int]:
    """(CPU per event, event-loop thread CPU per event, fewest received) of one blast, in us."""
    with blast_cpu.tree_server(tree) as running:
        blast_cpu.stream_blast(running, 2000, "warm")
        before = thread_cpu(running.pid)
        run = blast_cpu.stream_blast(running, events, "floor")
        after = thread_cpu(running.pid)
    spent = sorted((after[t] - before.get(t, 0.0) for t in after), reverse=True)
    return sum(spent) / events * 1e6, spent[0] / events * 1e6, run.delivered_min


@contextlib.contextmanager
def variants(with_mypyc: bool) -> Iterator[dict[str, Path]]:
    """The trees to measure, in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="rp-floor-") as tmp:
        base = Path(tmp)
        trees = {
            "as is": servers.ROOT,
            "decoding free": build(base, "free", [decoding_free]),
            "decoding free, no storage": build(base, "bare", [decoding_free, no_storage]),
        }
        if with_mypyc:
            trees["decoder compiled (mypyc)"] = build(base, "mypyc", [compiled_decoder])
        yield trees


def main() -> int:
    parser = argparse.ArgumentParser(description="Blast CPU per event with parts of the work taken away.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--mypyc", action="store_true", help="also a tree with the decoder compiled by mypyc")
    args = parser.parse_args()
    servers.raise_fd_limit()
    with variants(args.mypyc) as trees:
        totals: dict[str, list[float]] = {name: [] for name in trees}
        loops: dict[str, list[float]] = {name: [] for name in trees}
        print("| tree | round | CPU per event us | event loop thread us | other threads us | fewest received |")
        print("|---|---:|---:|---:|---:|---:|")
        for round_no in range(1, args.rounds + 1):
            for name, tree in trees.items():
                total, loop, received = measure(tree, args.events)
                totals[name].append(total)
                loops[name].append(loop)
                row = f"| {name} | {round_no} | {total:.1f} | {loop:.1f} | {total - loop:.1f} | {received:,} |"
                print(row, flush=True)
        print("\n| tree | CPU per event (median) | event loop thread | other threads | events/s on one core |")
        print("|---|---:|---:|---:|---:|")
        for name in trees:
            total, loop = statistics.median(totals[name]), statistics.median(loops[name])
            print(f"| {name} | {total:.1f} us | {loop:.1f} us | {total - loop:.1f} us | {1e6 / total:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
