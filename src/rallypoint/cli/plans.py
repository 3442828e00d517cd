"""``rallypoint plan``: show, export, import, list versions, diff, revert and publish a mission's operation plan.

Talks to a running server through the native API (``client.http``), with the same connection options
as ``rallypoint designation``: ``--server``, ``--token`` or ``--user`` with ``RALLYPOINT_PASSWORD`` /
``--password-stdin``, or ``--cert`` and ``--ca``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rallypoint.cli.remote import connect, session
from rallypoint.cli.wording import RallypointGroup

plan_app = typer.Typer(
    help="Operation plans inside missions (versions, diff, revert, export, import), on a running server.",
    no_args_is_help=True,
    cls=RallypointGroup,
)

FORMATS = {"datapackage": "zip", "kml": "kml", "geojson": "geojson"}
_BY_SUFFIX = {".zip": "datapackage", ".kml": "kml", ".geojson": "geojson", ".json": "geojson"}
Json = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")]
Mission = Annotated[str, typer.Argument(help="The mission's name.")]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept with the new version).")]


plan_app.callback()(connect)
_session = session


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _header(v: dict[str, Any]) -> str:
    if not v["version"]:
        return f"{v['mission']}: no plan yet"
    back = f" (reverted to v{v['reverted_from']})" if v.get("reverted_from") else ""
    return f"{v['mission']} plan v{v['version']} by {v['author']} at {v['time_ms']}: {v['reason']}{back}"


@plan_app.command("show")
def show(ctx: typer.Context, mission: Mission,
         version: Annotated[int | None, typer.Option("--version", min=0, help="A version (default: newest).")] = None,
         as_json: Json = False) -> None:
    """The plan: its version, author and reason, then its items by kind."""
    with _session(ctx) as client:
        found = client.plan(mission, version=version)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    typer.echo(_header(found))
    for kind, items in found["plan"].items():
        for item in items:
            label = item.get("name") or item.get("team") or ""
            typer.echo(f"  {kind[:-1]:<10} {item['id']:<24} {label}")


@plan_app.command("versions")
def versions(ctx: typer.Context, mission: Mission, as_json: Json = False) -> None:
    """Every version, oldest first: number, author, time (epoch ms) and reason."""
    with _session(ctx) as client:
        found = client.plan_versions(mission)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    for v in found:
        back = f" (reverted to v{v['reverted_from']})" if v.get("reverted_from") else ""
        typer.echo(f"v{v['version']}\t{v['author']}\t{v['time_ms']}\t{v['reason']}{back}")


@plan_app.command("diff")
def diff(ctx: typer.Context, mission: Mission,
         from_version: Annotated[int, typer.Argument(min=0, help="The older version (0: before the first).")],
         to_version: Annotated[int, typer.Argument(min=0, help="The newer version.")],
         as_json: Json = False) -> None:
    """What changed: + added, - removed, ~ changed (with the fields that differ)."""
    with _session(ctx) as client:
        found = client.plan_diff(mission, from_version, to_version)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    for ref in found["added"]:
        typer.echo(f"+ {ref['kind'][:-1]} {ref['id']}")
    for ref in found["removed"]:
        typer.echo(f"- {ref['kind'][:-1]} {ref['id']}")
    for change in found["changed"]:
        typer.echo(f"~ {change['kind'][:-1]} {change['id']} ({', '.join(change['fields'])})")
    if not (found["added"] or found["removed"] or found["changed"]):
        typer.echo("no difference")


@plan_app.command("revert")
def revert(ctx: typer.Context, mission: Mission,
           version: Annotated[int, typer.Argument(min=1, help="The version to restore.")],
           reason: Reason, as_json: Json = False) -> None:
    """Restore an old version: a new version equal to it (the history stays whole)."""
    with _session(ctx) as client:
        made = client.revert_plan(mission, version, reason)
    typer.echo(json.dumps(made, indent=2) if as_json else _header(made))


@plan_app.command("export")
def export(ctx: typer.Context, mission: Mission,
           fmt: Annotated[str, typer.Option("--format", help="datapackage, kml or geojson.")] = "datapackage",
           version: Annotated[int | None, typer.Option("--version", min=0, help="A version (default: newest).")] = None,
           out: Annotated[str | None, typer.Option("--out", help="File to write ('-': stdout).")] = None) -> None:
    """Write the plan as a TAK data package (zip), KML or GeoJSON file."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}", param_hint="--format")
    with _session(ctx) as client:
        data: bytes = client.export_plan(mission, format=fmt, version=version)
    if out == "-":
        sys.stdout.buffer.write(data)
        return
    path = Path(out or f"{mission}-plan.{FORMATS[fmt]}")
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror}") from None
    typer.echo(f"wrote {path} ({len(data)} bytes)")


@plan_app.command("import")
def import_file(ctx: typer.Context, mission: Mission,
                file: Annotated[Path, typer.Argument(help="A .zip data package, .kml or .geojson file.")],
                fmt: Annotated[str | None, typer.Option("--format", help="datapackage, kml or geojson "
                                                                         "(default: from the file name).")] = None,
                reason: Annotated[str | None, typer.Option("--reason",
                                                           help="Why (default: imported from ...).")] = None,
                replace: Annotated[bool, typer.Option("--replace", help="The file becomes the whole plan "
                                                                        "(default: merge items by id).")] = False,
                as_json: Json = False) -> None:
    """Import a file into the plan as a new version."""
    fmt = fmt or _BY_SUFFIX.get(file.suffix.lower())
    if fmt not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)} (cannot tell from {file.name!r})", param_hint="--format")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror}") from None
    with _session(ctx) as client:
        made = client.import_plan(mission, data, format=fmt, reason=reason, replace=replace)
    typer.echo(json.dumps(made, indent=2) if as_json else _header(made))


@plan_app.command("publish")
def publish(ctx: typer.Context, mission: Mission,
            package: Annotated[bool, typer.Option("--package", help="Also add the plan as a data package to the "
                                                                     "mission's contents.")] = False,
            as_json: Json = False) -> None:
    """Send the plan's drawings to the mission's subscribers again (and attach its data package)."""
    with _session(ctx) as client:
        done = client.publish_plan(mission, package=package)
    if as_json:
        typer.echo(json.dumps(done, indent=2))
        return
    typer.echo(f"sent {done['sent']} events" + (f"; package {done['package']}" if done.get("package") else ""))
