"""CPU per event row bound and inserted by sqlite3, with and without the identity adapters.

    .venv/bin/python bench/sqlite_binding.py [--rows 51200] [--rounds 5]

Inserts rows shaped as the event store's (17 values: text, integers, reals, the XML as ``bytes``,
the picture flag as ``bool``, a NULL exercise) into an in-memory table with the store's multi-row
statement (256 rows each), first with sqlite3's registry as Python leaves it, then after
``storage.sqlite.binding.register_identity_adapters()``, alternated ``--rounds`` times. Prints the
best CPU time per row of each. No disk, no indexes: only binding and the row insert.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rallypoint.storage.sqlite.binding import register_identity_adapters

CHUNK = 256
WIDTH = 17
ROW = (
    "ANDROID-0123456789abcdef", "a-f-G-U-C", "m-g", 1_765_000_000_000, 1_765_000_000_000, 1_765_000_060_000,
    40.123456, -105.654321, 42.3, "ALPHA-1", 1, "Cyan", "alpha", b"<event/>" * 80, 1_765_000_000_005, True, None,
)  # fmt: skip


def per_row_us(rows: int) -> float:
    """CPU microseconds per row for ``rows`` rows (a multiple of CHUNK)."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("CREATE TABLE events (" + ", ".join(f"c{i}" for i in range(WIDTH)) + ")")
    sql = "INSERT INTO events VALUES " + ", ".join(["(" + ", ".join("?" * WIDTH) + ")"] * CHUNK)
    values = list(ROW) * CHUNK
    db.execute("BEGIN")
    started = time.process_time()
    for _ in range(rows // CHUNK):
        db.execute(sql, values)
    spent = time.process_time() - started
    db.execute("ROLLBACK")
    db.close()
    return spent / rows * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=51_200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = max(CHUNK, args.rows // CHUNK * CHUNK)
    saved = dict(sqlite3.adapters)
    plain: list[float] = []
    adapted: list[float] = []
    for _ in range(args.rounds):
        sqlite3.adapters.clear()
        sqlite3.adapters.update(saved)
        plain.append(per_row_us(rows))
        register_identity_adapters()
        adapted.append(per_row_us(rows))
    print(f"{rows:,} rows of {WIDTH} values, best of {args.rounds}")
    print("| registry | CPU us per row |")
    print("|---|---:|")
    print(f"| as Python leaves it | {min(plain):.2f} |")
    print(f"| identity adapters for None, bytes, bool | {min(adapted):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
