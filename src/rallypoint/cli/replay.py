"""``rallypoint replay``: a window of stored history into a live server (as CoT) or into a file.

History is read from the store of a data directory (``--data-dir``, ``--storage`` or
``RALLYPOINT_STORAGE`` as ``serve`` reads it), SQLite or PostgreSQL, like ``rallypoint history``.
The contract is in docs/cli.md ("rallypoint replay").
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import msgspec
import typer

from rallypoint.cli.history import ExerciseOpt, exercise_arg, parse_bbox, parse_time_arg
from rallypoint.cli.stores import STORAGE_ENV
from rallypoint.clock import Clock, SystemClock
from rallypoint.errors import ConfigError, StorageError
from rallypoint.services.replay import (
    DEFAULT_UID_PREFIX,
    Pacer,
    ReplayError,
    ReplayWindow,
    check_speed,
    restamp,
    window,
    window_rows,
)
from rallypoint.storage.base import HistoryReader, StoredEvent
from rallypoint.storage.export import to_cot_xml, to_csv, to_geojson, to_kml
from rallypoint.storage.factory import open_event_store, sqlite_path_from_url

DEFAULT_DATA_DIR = Path("rallypoint-data")
MAX_EVENTS = 1_000_000
_SUFFIXES = {".kml": "kml", ".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".cot": "cot", ".xml": "cot"}


def time_arg(text: str, now_ms: int) -> int:
    """``--since``/``--until``: ISO 8601 (no zone = UTC), ``now``, or an age before now (``2h`` or ``-2h``)."""
    value = text.strip()
    if value.startswith("-") and value[1:2].isdigit():
        value = value[1:]
    return parse_time_arg(value, now_ms)


def out_format(path: Path) -> str:
    """The file format named by the extension of ``--out``."""
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise typer.BadParameter("the file name must end in .kml, .geojson, .json, .csv, .cot or .xml",
                                 param_hint="--out")
    return fmt


def target(url: str) -> tuple[str, int]:
    """``tcp://host:port`` as (host, port)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise typer.BadParameter("use tcp://host:port (a server's plain CoT port)", param_hint="--to")
    return parts.hostname, port


def render(rows: list[StoredEvent], fmt: str) -> bytes:
    """The rows as a file of format ``fmt``."""
    match fmt:
        case "kml":
            return to_kml(rows)
        case "geojson":
            return msgspec.json.format(msgspec.json.encode(to_geojson(rows)), indent=2) + b"\n"
        case "csv":
            return to_csv(rows)
        case _:
            return to_cot_xml(rows)


async def send_window(rows: AsyncIterator[StoredEvent], host: str, port: int, *, speed: float, clock: Clock,
                      uid_prefix: str) -> int:
    """Write the rows to ``host:port`` as CoT, each at its paced moment and re-stamped to it; returns the count."""
    reader, writer = await asyncio.open_connection(host, port)
    sent = 0
    try:
        pacer: Pacer | None = None
        async for row in rows:
            if not row.groups:
                # Addressed rows (chat to chosen contacts) went to chosen receivers only; sent
                # again on a shared connection they would reach everyone in its groups.
                continue
            if pacer is None:
                pacer = Pacer(started_ms=clock.now_ms(), first_ms=row.time, speed=speed)
            due = pacer.due_ms(row.time)
            wait_ms = due - clock.now_ms()
            if wait_ms > 0:
                await writer.drain()
                # Pacing is the point of a replay: wait out the original spacing (divided by speed).
                await asyncio.sleep(wait_ms / 1000)
            writer.write(restamp(row.xml, shift_ms=due - row.time, uid_prefix=uid_prefix) + b"\n")
            sent += 1
        await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()
        del reader
    return sent


async def _run(url: str, data_dir: Path, win: ReplayWindow, reader: HistoryReader | None, limit: int,
               out: Path | None, to: tuple[str, int] | None, speed: float,
               uid_prefix: str) -> tuple[int, bytes | None]:
    """Send the window (returns its count) or render it for ``out`` (returns the count and the file)."""
    store = open_event_store(url, data_dir)
    try:
        rows = window_rows(store, win, reader=reader, limit=limit)
        if to is not None:
            sent = await send_window(rows, to[0], to[1], speed=speed, clock=SystemClock(), uid_prefix=uid_prefix)
            return sent, None
        assert out is not None
        collected = [row async for row in rows]
        return len(collected), render(collected, out_format(out))
    finally:
        await store.close()


SinceOpt = Annotated[
    str,
    typer.Option("--since", help="Window start: ISO 8601 (UTC if no zone), now, or an age (-2h, 30m)."),
]

UntilOpt = Annotated[
    str,
    typer.Option("--until", help="Window end (exclusive): ISO 8601, now, or an age."),
]

SpeedOpt = Annotated[
    float,
    typer.Option("--speed", help="Replay speed: the original spacing is divided by it (0.01-1000)."),
]

ToOpt = Annotated[
    str | None,
    typer.Option("--to", help="Send into a live server: tcp://host:port (plain CoT port)."),
]

OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write a file instead: .kml, .geojson, .csv or .cot/.xml."),
]

BboxOpt = Annotated[
    str | None,
    typer.Option("--bbox", help="Only this area: west,south,east,north in degrees."),
]

AntimeridianOpt = Annotated[
    bool,
    typer.Option("--antimeridian", help="The --bbox crosses the 180th meridian."),
]

TypePrefixOpt = Annotated[
    str | None,
    typer.Option("--type", help="Only this CoT type prefix, e.g. a-f."),
]

GroupOpt = Annotated[
    list[str] | None,
    typer.Option("--group", help="Only events broadcast to this group (repeatable)."),
]

UidPrefixOpt = Annotated[
    str,
    typer.Option("--uid-prefix", help="Put before every replayed uid (never empty with --to)."),
]

LimitOpt = Annotated[
    int,
    typer.Option("--limit", help="At most this many events."),
]

DataDirOpt = Annotated[
    Path,
    typer.Option("--data-dir", help="Rallypoint data directory."),
]

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Store URL (default: RALLYPOINT_STORAGE, else DATA_DIR/events.db)."),
]


def replay_command(
    since: SinceOpt,
    until: UntilOpt = "now",
    speed: SpeedOpt = 1.0,
    to: ToOpt = None,
    out: OutOpt = None,
    bbox: BboxOpt = None,
    antimeridian: AntimeridianOpt = False,
    type_prefix: TypePrefixOpt = None,
    group: GroupOpt = None,
    uid_prefix: UidPrefixOpt = DEFAULT_UID_PREFIX,
    limit: LimitOpt = MAX_EVENTS,
    exercise: ExerciseOpt = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    storage: StorageOpt = None,
) -> None:
    """Replay a window of stored history into a live server (--to) or write it to a file (--out)."""
    if (to is None) == (out is None):
        raise typer.BadParameter("give exactly one of --to tcp://host:port or --out FILE")
    if limit < 1:
        raise typer.BadParameter("--limit must be at least 1", param_hint="--limit")
    if out is not None:
        out_format(out)
    if to is not None and not uid_prefix:
        # The same uids, re-stamped to now, would bring units back into the live picture as if
        # they were reporting again (a track long expired shown as live).
        raise typer.BadParameter("a replay into a server needs a uid prefix: replayed units must not take "
                                 "the uids of live ones", param_hint="--uid-prefix")
    address = target(to) if to is not None else None
    now_ms = SystemClock().now_ms()
    try:
        win = window(time_arg(since, now_ms), time_arg(until, now_ms),
                     bbox=parse_bbox(bbox, antimeridian=antimeridian) if bbox else None, type_prefix=type_prefix,
                     exercise=exercise_arg(exercise))
        check_speed(speed)
    except ReplayError as exc:
        raise typer.BadParameter(str(exc)) from None
    reader = HistoryReader(groups=frozenset(group), all_addressed=False) if group else None
    url = storage or _env_storage() or "sqlite://"
    try:
        path = sqlite_path_from_url(url, data_dir)
        if path is not None and not path.exists():
            raise ConfigError(f"no event database at {path}")
        count, data = asyncio.run(_run(url, data_dir, win, reader, limit, out, address, speed, uid_prefix))
        if out is not None and data is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
    except (ConfigError, StorageError, ReplayError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        where = f"send to {to}" if to is not None else f"write {out}"
        typer.echo(f"error: cannot {where}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    verb = f"sent {count} events to {to}" if to is not None else f"wrote {count} events to {out}"
    typer.echo(verb, err=True)


def _env_storage() -> str | None:
    return os.environ.get(STORAGE_ENV) or None
