"""``rallypoint task``: assign tasks, list them, show one, change its state, on a running server.

Talks to the server through the native API (``client.http``). Who you are: ``--token`` (or
``RALLYPOINT_TOKEN``), or ``--user`` (or ``RALLYPOINT_USER``) with the password from
``RALLYPOINT_PASSWORD`` or ``--password-stdin``, or a client certificate (``--cert``, ``--ca``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rallypoint.cli.remote import connect, session
from rallypoint.cli.wording import RallypointGroup
from rallypoint.clock import SystemClock
from rallypoint.model.task import MAX_DUE_MS, MIN_DUE_MS, TaskState

task_app = typer.Typer(
    help="Tasks for units and teams (assign, follow, change state) on a running server.",
    no_args_is_help=True,
    cls=RallypointGroup,
)

Json = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")]
Id = Annotated[str, typer.Argument(help="The task's id (from add or list).")]
_IN = re.compile(r"^\+?(\d+(?:\.\d+)?)\s*([mhd])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


task_app.callback()(connect)
_session = session


def parse_at(text: str) -> tuple[float, float]:
    """``LAT,LON`` in degrees (finite, within range)."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise typer.BadParameter("expected LAT,LON in degrees, e.g. 39.1,-120.03", param_hint="--at") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise typer.BadParameter("latitude -90..90 and longitude -180..180, finite", param_hint="--at")
    return lat, lon


def parse_due(text: str, now_ms: int) -> int:
    """``--due``: an ISO 8601 time (no zone = UTC), or a delay from now such as ``90m``, ``+2h``, ``1d``."""
    value = text.strip()
    if match := _IN.match(value.lower()):
        due = now_ms + int(float(match.group(1)) * _UNIT_MS[match.group(2)])
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise typer.BadParameter("an ISO 8601 time (e.g. 2026-05-01T14:00Z) or a delay like 90m, 2h, 1d",
                                     param_hint="--due") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        due = int(parsed.timestamp() * 1000)
    if not MIN_DUE_MS <= due <= MAX_DUE_MS:
        raise typer.BadParameter("the due time must fall between 2000 and 2100", param_hint="--due")
    return due


def _iso(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%MZ")


def _assignee(task: dict[str, Any]) -> str:
    a = task["assignee"]
    return next(f"{k} {a[k]}" for k in ("uid", "callsign", "group") if a.get(k) is not None)


def _print_task(task: dict[str, Any]) -> None:
    console = Console()
    console.print(f"[bold]{task['id']}[/bold]  {task['state']}  P{task.get('priority', 3)}  {task['what']}")
    if task.get("details"):
        console.print(f"  details: {task['details']}")
    console.print(f"  assignee: {_assignee(task)}   creator: {task['creator']}   due: {_iso(task.get('due_ms'))}"
                  + ("  (overdue alert sent)" if task.get("overdue_alerted") else ""))
    if task.get("where"):
        console.print(f"  at: {task['where']['lat']},{task['where']['lon']}")
    if task.get("mission"):
        console.print(f"  mission: {task['mission']}")
    for step in task.get("history", []):
        note = f" — {step['note']}" if step.get("note") else ""
        console.print(f"  {_iso(step['at_ms'])}  {step['state']:<12} by {step['by']} ({step['via']}){note}")


@task_app.command("add")
def add(
    ctx: typer.Context,
    what: Annotated[str, typer.Argument(help="What to do.")],
    uid: Annotated[str | None, typer.Option("--uid", help="Assign to this client uid.")] = None,
    callsign: Annotated[str | None, typer.Option("--callsign", help="Assign to this callsign.")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Assign to this team (group).")] = None,
    at: Annotated[str | None, typer.Option("--at", help="Where: LAT,LON in degrees.")] = None,
    hae: Annotated[float | None, typer.Option("--hae", help="Height above the ellipsoid, metres.")] = None,
    due: Annotated[str | None, typer.Option("--due", help="By when: ISO 8601 time or a delay (90m, 2h).")] = None,
    mission: Annotated[str | None, typer.Option("--mission", help="The mission the task belongs to.")] = None,
    notify_uid: Annotated[str | None, typer.Option("--notify-uid", help="Your device's uid: gets changes and the "
                                                                         "overdue alert.")] = None,
    details: Annotated[str | None, typer.Option("--details", help="How, in more words.")] = None,
    priority: Annotated[int | None, typer.Option("--priority", min=1, max=5, help="1 (most urgent) to 5; "
                                                                                  "default 3.")] = None,
    as_json: Json = False,
) -> None:
    """Assign a task to a unit (--uid or --callsign) or a team (--group)."""
    if sum(v is not None for v in (uid, callsign, group)) != 1:
        raise typer.BadParameter("give exactly one of --uid, --callsign or --group")
    if hae is not None and not (math.isfinite(hae) and -1000 <= hae <= 100_000):
        raise typer.BadParameter("-1000..100000 metres", param_hint="--hae")
    point = parse_at(at) if at is not None else None
    due_ms = parse_due(due, SystemClock().now_ms()) if due is not None else None
    with _session(ctx) as client:
        task = client.create_task(what, uid=uid, callsign=callsign, group=group, point=point, hae=hae,
                                  due_ms=due_ms, mission=mission, notify_uid=notify_uid, details=details,
                                  priority=priority)
    if as_json:
        typer.echo(json.dumps(task, indent=2))
    else:
        typer.echo(task["id"])


@task_app.command("list")
def list_tasks(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option("--state", help="Only this state.")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Only this uid, callsign or group.")] = None,
    mission: Annotated[str | None, typer.Option("--mission", help="Only this mission.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=5000, help="At most this many.")] = 1000,
    as_json: Json = False,
) -> None:
    """Tasks you may see, newest first."""
    if state is not None and state not in {s.value for s in TaskState}:
        raise typer.BadParameter(f"one of {', '.join(s.value for s in TaskState)}", param_hint="--state")
    with _session(ctx) as client:
        tasks = client.tasks(state=state, assignee=assignee, mission=mission, limit=limit)
    if as_json:
        typer.echo(json.dumps(tasks, indent=2))
        return
    table = Table("id", "state", "what", "assignee", "due (UTC)", "creator")
    for t in tasks:
        table.add_row(t["id"], t["state"], t["what"], _assignee(t), _iso(t.get("due_ms")), t["creator"])
    Console().print(table)


@task_app.command("show")
def show(ctx: typer.Context, task_id: Id, as_json: Json = False) -> None:
    """One task with its history."""
    with _session(ctx) as client:
        task = client.task(task_id)
    if as_json:
        typer.echo(json.dumps(task, indent=2))
    else:
        _print_task(task)


@task_app.command("status")
def status(
    ctx: typer.Context,
    task_id: Id,
    state: Annotated[str, typer.Argument(help="acknowledged, in_progress, done, failed or cancelled.")],
    note: Annotated[str, typer.Option("--note", help="Why, for the history.")] = "",
    as_json: Json = False,
) -> None:
    """Move a task to another state (cancelled: its creator or an admin)."""
    if state not in {s.value for s in TaskState} - {TaskState.ASSIGNED.value}:
        raise typer.BadParameter("one of acknowledged, in_progress, done, failed, cancelled", param_hint="STATE")
    with _session(ctx) as client:
        task = client.set_task_status(task_id, state, note)
    if as_json:
        typer.echo(json.dumps(task, indent=2))
    else:
        typer.echo(f"{task['id']} {task['state']}")
