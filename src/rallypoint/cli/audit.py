"""`rallypoint audit ...`: check and read the tamper-evident audit log."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import msgspec
import typer

from rallypoint.cli.stores import cli_stores
from rallypoint.clock import ms_to_datetime
from rallypoint.errors import StorageError
from rallypoint.security.audit import AuditEntry, AuditLog, AuditVerification
from rallypoint.storage.factory import AUDIT_FILE

T = TypeVar("T")

audit_app = typer.Typer(no_args_is_help=True)

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Server data directory; the log is DATA_DIR/audit.db.")
]


@audit_app.callback()
def _audit_group() -> None:
    """Verify and list the audit log."""


def audit_path(data_dir: Path) -> Path:
    """Where the audit log of a data directory lives."""
    return data_dir / AUDIT_FILE


def cli_actor() -> str:
    """``cli:<operating-system user>``: who an audit entry written from the command line is from."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"cli:{who}"


@audit_app.command("verify")
def verify(data_dir: DataDir = Path("rallypoint-data")) -> None:
    """Check the hash chain; exit 1 and list the problems if it is broken."""
    _require_log(data_dir)
    result = _run_verify(data_dir)
    if result.ok:
        typer.echo(f"audit log OK: {result.checked} entries")
        return
    typer.echo(f"audit log BROKEN: {len(result.problems)} problems in {result.checked} entries", err=True)
    for problem in result.problems:
        typer.echo(f"  {problem}", err=True)
    raise typer.Exit(code=1)


@audit_app.command("list")
def list_entries(
    data_dir: DataDir = Path("rallypoint-data"),
    since_seq: Annotated[int, typer.Option("--since-seq", min=0, help="Only entries after this seq.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many entries.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of text lines.")] = False,
) -> None:
    """Print entries in order."""
    _require_log(data_dir)
    entries = _run_entries(data_dir, since_seq, limit)
    if as_json:
        typer.echo(msgspec.json.encode(entries, order="sorted").decode())
        return
    for e in entries:
        when = ms_to_datetime(e.ts_ms).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        detail = " ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
        typer.echo(f"{e.seq:>6} {when} {e.actor} {e.action} {e.target} {detail}".rstrip())


def _require_log(data_dir: Path) -> None:
    """Exit 1 when the log is a file that does not exist (reading must not create an empty one)."""
    if cli_stores(data_dir).on_postgres("audit"):
        return
    if not audit_path(data_dir).exists():
        typer.echo(f"no audit log at {audit_path(data_dir)}", err=True)
        raise typer.Exit(code=1)


def _run_verify(data_dir: Path) -> AuditVerification:
    async def go() -> AuditVerification:
        log = AuditLog(cli_stores(data_dir).audit())
        try:
            return await log.verify()
        finally:
            await log.close()

    return _guard(lambda: asyncio.run(go()))


def _run_entries(data_dir: Path, since_seq: int, limit: int) -> list[AuditEntry]:
    async def go() -> list[AuditEntry]:
        log = AuditLog(cli_stores(data_dir).audit())
        try:
            return await log.entries(since_seq, limit)
        finally:
            await log.close()

    return _guard(lambda: asyncio.run(go()))


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except StorageError as exc:
        typer.echo(f"audit log error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
