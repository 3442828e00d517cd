"""``rallypoint designation``: propose, list, show, approve, reject and withdraw designations.

Talks to a running server through the native API (``client.http``). Who you are: ``--token`` (or
``RALLYPOINT_TOKEN``), or ``--user`` (or ``RALLYPOINT_USER``) with the password from
``RALLYPOINT_PASSWORD`` or ``--password-stdin``, or a client certificate (``--cert``, ``--ca``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rallypoint.cli.remote import connect, session
from rallypoint.cli.wording import RallypointGroup

designation_app = typer.Typer(
    help="Designations (points and areas of interest) with two-person approval, on a running server.",
    no_args_is_help=True,
    cls=RallypointGroup,
)

Json = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")]
Id = Annotated[str, typer.Argument(help="The designation's id (from propose or list).")]


designation_app.callback()(connect)
_session = session


def parse_point(text: str, option: str = "--point") -> tuple[float, float]:
    """``LAT,LON`` in degrees (finite, within range)."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise typer.BadParameter(f"expected LAT,LON in degrees (got {text!r})", param_hint=option) from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise typer.BadParameter(f"latitude -90..90 and longitude -180..180 (got {text!r})", param_hint=option)
    return lat, lon


def parse_polygon(text: str) -> list[tuple[float, float]]:
    """``LAT,LON;LAT,LON;...`` (the server checks the shape)."""
    return [parse_point(p.strip(), "--polygon") for p in text.split(";") if p.strip()]


def _show(value: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        typer.echo(json.dumps(value, indent=2))
    else:
        render(value)


def _one(d: dict[str, Any]) -> None:
    shared = ",".join(d.get("shared_groups") or []) or "-"
    typer.echo(f"{d['id']} {d['state']} {d['kind']} {d['category']} {d['affiliation']} P{d['priority']} "
               f"{d['title']!r} proposer={d['proposer']} approver={d.get('approver') or '-'} shared={shared}")
    if d.get("reason"):
        typer.echo(f"reason: {d['reason']}")


def _table(rows: list[dict[str, Any]]) -> None:
    table = Table("id", "state", "kind", "category", "affiliation", "priority", "title", "proposer", "approver")
    for d in rows:
        table.add_row(d["id"], d["state"], d["kind"], d["category"], d["affiliation"], str(d["priority"]),
                      d["title"], d["proposer"], d.get("approver") or "")
    Console(width=200).print(table)


@designation_app.command("propose")
def propose(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument(help="Short title shown on maps.")],
    category: Annotated[str, typer.Option("--category", help="casualty, hazard, landing_site, drop_zone, watch, "
                                          "obstacle, vessel, aircraft or other.")],
    point: Annotated[str | None, typer.Option("--point", help="LAT,LON of a point.")] = None,
    polygon: Annotated[str | None, typer.Option("--polygon", help="LAT,LON;LAT,LON;... of an area.")] = None,
    affiliation: Annotated[str, typer.Option("--affiliation", help="friend, hostile, neutral or unknown.")] = "unknown",
    priority: Annotated[int, typer.Option("--priority", min=1, max=5, help="1 most urgent ... 5 least.")] = 3,
    notes: Annotated[str, typer.Option("--notes", help="Free text for people.")] = "",
    hae: Annotated[float | None, typer.Option("--hae", help="Metres above the WGS-84 ellipsoid.")] = None,
    attach: Annotated[list[str] | None, typer.Option("--attach", help="Data package hash (repeatable).")] = None,
    mission: Annotated[str | None, typer.Option("--mission", help="Mission to add it to once approved.")] = None,
    as_json: Json = False,
) -> None:
    """Propose a designation: visible to your groups, marked unapproved, until an approver decides."""
    if (point is None) == (polygon is None):
        raise typer.BadParameter("give either --point or --polygon", param_hint="--point/--polygon")
    if hae is not None and not math.isfinite(hae):
        raise typer.BadParameter(f"metres as a finite number (got {hae})", param_hint="--hae")
    with _session(ctx) as client:
        answer = client.propose_designation(
            title, category, point=parse_point(point) if point else None,
            polygon=parse_polygon(polygon) if polygon else None, affiliation=affiliation, priority=priority,
            notes=notes, hae=hae, attachments=attach or (), mission=mission,
        )
    _show(answer, as_json, _one)


@designation_app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option("--state", help="proposed, approved, rejected or withdrawn.")] = None,
    as_json: Json = False,
) -> None:
    """Designations you may see, oldest first."""
    with _session(ctx) as client:
        answer = client.designations(state=state)
    _show(answer, as_json, _table)


@designation_app.command("show")
def show(ctx: typer.Context, designation_id: Id, as_json: Json = False) -> None:
    """One designation."""
    with _session(ctx) as client:
        answer = client.designation(designation_id)
    _show(answer, as_json, _one)


@designation_app.command("approve")
def approve(
    ctx: typer.Context,
    designation_id: Id,
    group: Annotated[list[str] | None, typer.Option("--group", help="Share with this group (repeatable; "
                                                    "default: the proposer's groups).")] = None,
    as_json: Json = False,
) -> None:
    """Approve (role approver, not the proposer) and share the designation."""
    with _session(ctx) as client:
        answer = client.approve_designation(designation_id, groups=group or None)
    _show(answer, as_json, _one)


@designation_app.command("reject")
def reject(
    ctx: typer.Context,
    designation_id: Id,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown to the proposer's groups).")],
    as_json: Json = False,
) -> None:
    """Reject (role approver, not the proposer)."""
    with _session(ctx) as client:
        answer = client.reject_designation(designation_id, reason)
    _show(answer, as_json, _one)


@designation_app.command("withdraw")
def withdraw(ctx: typer.Context, designation_id: Id, as_json: Json = False) -> None:
    """Withdraw your own proposal."""
    with _session(ctx) as client:
        answer = client.withdraw_designation(designation_id)
    _show(answer, as_json, _one)
