"""``rallypoint exercise report``: the after-action report of a window of stored history.

Reads the event history and the audit log straight from the stores of a data directory (``--data-dir``,
``--storage`` or ``RALLYPOINT_STORAGE``), like ``rallypoint history`` and ``rallypoint replay``; the
server may be running or not. The contract is in docs/exercises.md ("After-action report").
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from rallypoint.aar.compute import DEFAULT_LATE_MS
from rallypoint.aar.html import render_html
from rallypoint.aar.load import build_report
from rallypoint.aar.model import Report
from rallypoint.aar.pdf import NoPdfRenderer, PdfFailed, html_to_pdf
from rallypoint.cli.exercise import exercise_app
from rallypoint.cli.replay import time_arg
from rallypoint.cli.stores import STORAGE_ENV
from rallypoint.clock import SystemClock
from rallypoint.errors import ConfigError, StorageError
from rallypoint.storage.base.audit import AuditRecords
from rallypoint.storage.factory import AUDIT_FILE, open_stores, sqlite_path_from_url

EXERCISE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_DATA_DIR = Path("rallypoint-data")
log = logging.getLogger(__name__)


async def _report(url: str, data_dir: Path, *, since_ms: int, until_ms: int, exercise: str | None,
                  late_ms: int) -> Report:
    stores = open_stores(url, data_dir)
    events = stores.events()
    audit: AuditRecords | None = None
    if stores.on_postgres("audit") or (data_dir / AUDIT_FILE).exists():
        audit = stores.audit()
    try:
        return await build_report(events, audit, since_ms=since_ms, until_ms=until_ms, exercise=exercise,
                                  late_ms=late_ms)
    finally:
        for store in (events, audit):
            try:
                if store is not None:
                    await store.close()
            except StorageError as exc:
                # Closing tidies up (SQLite's PRAGMA optimize), which a running server's writes may
                # refuse; everything the report needs has been read by then.
                log.warning("store not closed cleanly", extra={"error": str(exc)})


@exercise_app.command("report")
def report_command(
    since: Annotated[str, typer.Option("--since", help="Window start: ISO 8601 (UTC if no zone), now, an age.")],
    until: Annotated[str, typer.Option("--until", help="Window end (exclusive): ISO 8601, now, or an age.")],
    out: Annotated[Path, typer.Option("--out", help="report.html, report.pdf (headless Chromium) or report.json.")],
    exercise: Annotated[
        str | None, typer.Option("--exercise", help="Only this exercise (and live traffic); default: every one.")
    ] = None,
    late_after: Annotated[
        float, typer.Option("--late-after", min=0.0, help="Seconds after its own time a report counts as late.")
    ] = DEFAULT_LATE_MS / 1000,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Rallypoint data directory.")] = DEFAULT_DATA_DIR,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="Store URL: sqlite:///path.db, sqlite:// (= DATA_DIR/events.db), postgresql://..."),
    ] = None,
) -> None:
    """Write the after-action report of a window: injects and responses, map, delivery per link, teams."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf", ".json"):
        raise typer.BadParameter("the file name must end in .html, .pdf or .json", param_hint="--out")
    if exercise is not None and not EXERCISE_ID.fullmatch(exercise):
        raise typer.BadParameter("letters, digits, - and _, up to 64", param_hint="--exercise")
    now_ms = SystemClock().now_ms()
    since_ms, until_ms = time_arg(since, now_ms), time_arg(until, now_ms)
    if until_ms <= since_ms:
        raise typer.BadParameter("--until must be later than --since", param_hint="--until")
    url = storage or os.environ.get(STORAGE_ENV) or "sqlite://"
    started = time.monotonic()
    try:
        path = sqlite_path_from_url(url, data_dir)
        if path is not None and not path.exists():
            # Reading must not create an empty database where the operator mistyped a path.
            raise ConfigError(f"no event database at {path}")
        report = asyncio.run(_report(url, data_dir, since_ms=since_ms, until_ms=until_ms, exercise=exercise,
                                     late_ms=round(late_after * 1000)))
    except (ConfigError, StorageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if suffix == ".json":
        # The figures themselves, for other tools (docs/exercises.md lists the fields).
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=1) + b"\n")
        typer.echo(f"wrote {out}: {report.rows_kept} events, {len(report.injects)} injects", err=True)
        return
    html = render_html(report, generated_ms=SystemClock().now_ms())
    if suffix == ".pdf":
        try:
            html_to_pdf(html, out)
        except NoPdfRenderer as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except PdfFailed as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    typer.echo(f"wrote {out}: {report.rows_kept} events, {len(report.injects)} injects, {len(report.links)} links"
               f" ({time.monotonic() - started:.1f} s)", err=True)
