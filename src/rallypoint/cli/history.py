"""``rallypoint history``: search and export the stored event history.

The main app mounts this with ``app.add_typer(history_app, name="history")``; it also runs on its
own (``python -m rallypoint.cli.history``).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from rallypoint.cli.wording import RallypointGroup
from rallypoint.clock import Clock, SystemClock, datetime_to_ms
from rallypoint.errors import ConfigError, StorageError
from rallypoint.model.cot import UNKNOWN_ERROR
from rallypoint.model.exercise import exercise_filter
from rallypoint.storage.base import BBox, HistoryQuery, StoredEvent
from rallypoint.storage.bbox import BBoxError, bbox_from_text
from rallypoint.storage.export import iso_ms, to_cot_xml, to_geojson, to_kml
from rallypoint.storage.factory import open_event_store, sqlite_path_from_url

history_app = typer.Typer(
    help="Search and export the stored CoT event history.",
    no_args_is_help=True,
    cls=RallypointGroup,
)

DEFAULT_DATA_DIR = Path("rallypoint-data")
TABLE_COLUMNS = ("time (UTC)", "uid", "type", "how", "callsign", "team", "groups", "lat", "lon", "sender")
CSV_COLUMNS = ("time", "uid", "type", "how", "callsign", "team", "groups", "lat", "lon", "hae", "sender")
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class OutputFormat(StrEnum):
    """Formats for ``history query``."""

    table = "table"
    csv = "csv"
    json = "json"
    cot = "cot"
    geojson = "geojson"
    kml = "kml"


class SortOrder(StrEnum):
    """``asc``: oldest first; ``desc``: newest first."""

    asc = "asc"
    desc = "desc"


class ExportFormat(StrEnum):
    """Formats for ``history export`` (file formats only)."""

    csv = "csv"
    json = "json"
    cot = "cot"
    geojson = "geojson"
    kml = "kml"


def parse_time_arg(text: str, now_ms: int) -> int:
    """Epoch ms for ``--since``/``--until``: ISO-8601 (naive = UTC), ``now``, or an age like ``2h``."""
    value = text.strip()
    if value.lower() == "now":
        return now_ms
    if match := _RELATIVE.match(value.lower()):
        amount, unit = match.groups()
        return now_ms - int(float(amount) * _UNIT_S[unit] * 1000)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither ISO-8601 (2024-05-01T12:00:00Z) nor an age (30s, 30m, 2h, 7d, 1w)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return datetime_to_ms(dt)


def parse_bbox(text: str, *, antimeridian: bool = False) -> BBox:
    """``west,south,east,north`` in degrees; west > east only with ``antimeridian`` (``--antimeridian``)."""
    try:
        return bbox_from_text(text, antimeridian=antimeridian, crossing_hint="--antimeridian")
    except BBoxError as exc:
        raise typer.BadParameter(str(exc), param_hint="--bbox") from None


def build_query(
    *,
    since: str | None,
    until: str | None,
    uid: str | None,
    type_prefix: str | None,
    bbox: str | None,
    limit: int,
    order: SortOrder,
    clock: Clock,
    antimeridian: bool = False,
    exercise: str | None = None,
) -> HistoryQuery:
    """Validate the command-line filters into a ``HistoryQuery``."""
    now_ms = clock.now_ms()
    if limit < 1:
        raise typer.BadParameter("--limit must be at least 1")
    if antimeridian and not bbox:
        raise typer.BadParameter("--antimeridian only qualifies a --bbox; give the box too")
    return HistoryQuery(
        since_ms=parse_time_arg(since, now_ms) if since else None,
        until_ms=parse_time_arg(until, now_ms) if until else None,
        uid=uid,
        type_prefix=type_prefix,
        bbox=parse_bbox(bbox, antimeridian=antimeridian) if bbox else None,
        limit=limit,
        order="desc" if order is SortOrder.desc else "asc",
        exercise=exercise_arg(exercise),
    )


def exercise_arg(value: str | None) -> str:
    """``--exercise``: any (default), none (live traffic only) or one exercise id."""
    try:
        return exercise_filter(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--exercise") from None


async def _fetch(url: str, data_dir: Path, q: HistoryQuery) -> list[StoredEvent]:
    store = open_event_store(url, data_dir)
    try:
        return await store.query(q)
    finally:
        await store.close()


def _load(storage: str | None, data_dir: Path, q: HistoryQuery) -> list[StoredEvent]:
    url = storage or "sqlite://"
    try:
        path = sqlite_path_from_url(url, data_dir)
        if path is not None and not path.exists():
            # Reading must not create an empty database where the operator mistyped a path.
            raise ConfigError(f"no event database at {path}")
        return asyncio.run(_fetch(url, data_dir, q))
    except (ConfigError, StorageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _as_json(events: list[StoredEvent]) -> bytes:
    rows = [
        {
            "uid": ev.uid,
            "type": ev.type,
            "how": ev.how,
            "time": iso_ms(ev.time),
            "start": iso_ms(ev.start),
            "stale": iso_ms(ev.stale),
            "lat": ev.lat,
            "lon": ev.lon,
            "hae": None if ev.hae == UNKNOWN_ERROR else ev.hae,
            "callsign": ev.callsign,
            "team": ev.team,
            "groups": sorted(ev.groups),
            "sender": ev.sender,
            "received": iso_ms(ev.received),
            "xml": ev.xml.decode("utf-8", errors="replace"),
        }
        for ev in events
    ]
    return msgspec.json.format(msgspec.json.encode(rows), indent=2) + b"\n"


def _groups(ev: StoredEvent) -> str:
    # Access groups the event was broadcast to, ";"-separated (group names may hold commas).
    return ";".join(sorted(ev.groups))


def _as_csv(events: list[StoredEvent]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for ev in events:
        writer.writerow(
            [
                iso_ms(ev.time), ev.uid, ev.type, ev.how, ev.callsign or "", ev.team or "", _groups(ev),
                f"{ev.lat:.6f}", f"{ev.lon:.6f}", "" if ev.hae == UNKNOWN_ERROR else f"{ev.hae:g}", ev.sender or "",
            ]
        )  # fmt: skip
    return buffer.getvalue().encode("utf-8")


def _render(events: list[StoredEvent], fmt: str) -> bytes:
    match fmt:
        case "csv":
            return _as_csv(events)
        case "json":
            return _as_json(events)
        case "cot":
            return to_cot_xml(events)
        case "geojson":
            return msgspec.json.format(msgspec.json.encode(to_geojson(events)), indent=2) + b"\n"
        case "kml":
            return to_kml(events)
        case _:
            raise ValueError(f"unknown format {fmt!r}")


def _table_rows(events: list[StoredEvent]) -> list[tuple[str, ...]]:
    return [
        (iso_ms(ev.time), ev.uid, ev.type, ev.how, ev.callsign or "", ev.team or "", _groups(ev),
         f"{ev.lat:.6f}", f"{ev.lon:.6f}", ev.sender or "")
        for ev in events
    ]  # fmt: skip


def _table(events: list[StoredEvent]) -> Table:
    table = Table(title=f"{len(events)} events")
    for column in TABLE_COLUMNS:
        # Fold rather than truncate: a cut-off uid is useless for a follow-up --uid query.
        table.add_column(column, overflow="fold")
    for row in _table_rows(events):
        table.add_row(*row)
    return table


def _plain_table(events: list[StoredEvent]) -> bytes:
    """One line per event, columns padded to their widest cell: for pipes, files, grep and less."""
    rows = [TABLE_COLUMNS, *_table_rows(events)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _emit(data: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)


DataDirOpt = Annotated[Path, typer.Option("--data-dir", help="Rallypoint data directory.")]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Store URL: sqlite:///path.db, sqlite:// (= DATA_DIR/events.db), postgresql://user@host/db, memory://.",
    ),
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="From (inclusive): ISO-8601 or an age (2h, 30m).")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Until (exclusive): ISO-8601 or an age.")]
UidOpt = Annotated[str | None, typer.Option("--uid", help="Only this uid.")]
TypeOpt = Annotated[str | None, typer.Option("--type", help="CoT type prefix, e.g. a-f or b-m-p.")]
BBoxOpt = Annotated[
    str | None,
    typer.Option("--bbox", help="west,south,east,north (minlon,minlat,maxlon,maxlat) in degrees."),
]
AntimeridianOpt = Annotated[
    bool,
    typer.Option("--antimeridian", help="The --bbox crosses the 180th meridian: its west is greater than its east."),
]
ExerciseOpt = Annotated[
    str | None,
    typer.Option("--exercise", help="any (default), none (live traffic only) or one exercise's id."),
]
OrderOpt = Annotated[SortOrder, typer.Option("--order", help="asc (oldest first) or desc (newest first).")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")]


@history_app.command("query")
def query_command(
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    storage: StorageOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    uid: UidOpt = None,
    type_prefix: TypeOpt = None,
    bbox: BBoxOpt = None,
    antimeridian: AntimeridianOpt = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many events.")] = 1000,
    order: OrderOpt = SortOrder.asc,
    exercise: ExerciseOpt = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, csv, json, cot, geojson or kml.")
    ] = OutputFormat.table,
    out: OutOpt = None,
) -> None:
    """Show stored events matching the filters."""
    q = build_query(
        since=since,
        until=until,
        uid=uid,
        type_prefix=type_prefix,
        bbox=bbox,
        antimeridian=antimeridian,
        limit=limit,
        order=order,
        clock=SystemClock(),
        exercise=exercise,
    )
    events = _load(storage, data_dir, q)
    if fmt is OutputFormat.table:
        if out is None and sys.stdout.isatty():
            Console().print(_table(events))
        else:
            # Piped or written to a file: one unwrapped line per event, whatever the width.
            _emit(_plain_table(events), out)
        return
    _emit(_render(events, fmt.value), out)


@history_app.command("export")
def export_command(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv, json, cot, geojson or kml.")],
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    storage: StorageOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    uid: UidOpt = None,
    type_prefix: TypeOpt = None,
    bbox: BBoxOpt = None,
    antimeridian: AntimeridianOpt = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many events.")] = 1_000_000,
    order: OrderOpt = SortOrder.asc,
    exercise: ExerciseOpt = None,
    out: OutOpt = None,
) -> None:
    """Export stored events matching the filters to a file (or stdout)."""
    q = build_query(
        since=since,
        until=until,
        uid=uid,
        type_prefix=type_prefix,
        bbox=bbox,
        antimeridian=antimeridian,
        limit=limit,
        order=order,
        clock=SystemClock(),
        exercise=exercise,
    )
    events = _load(storage, data_dir, q)
    _emit(_render(events, fmt.value), out)
    if out is not None:
        typer.echo(f"wrote {len(events)} events to {out}", err=True)


if __name__ == "__main__":
    history_app()
