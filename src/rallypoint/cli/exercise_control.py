"""``rallypoint exercise list|status|start|pause|resume|inject|stop|speed``: live control of a running exercise.

Talks to the server's native API (``/api/exercises``; docs/exercises.md, "Control and marking"), as
``rallypoint task`` does: ``--server``, ``--token`` or ``--user`` with the password from
``RALLYPOINT_PASSWORD`` or ``--password-stdin``, ``--cert``/``--ca`` for HTTPS. Each command takes
these options itself (the group's other commands, ``run`` and ``report``, have their own).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rallypoint.cli.exercise import exercise_app
from rallypoint.cli.remote import DEFAULT_SERVER, connect, session
from rallypoint.model.exercise_control import MAX_SPEED, MIN_SPEED

Id = Annotated[str, typer.Argument(help="The exercise id (from list).")]
Json = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")]
Server = Annotated[str, typer.Option("--server", envvar="RALLYPOINT_URL", help="Server base URL.")]
Token = Annotated[str | None, typer.Option("--token", envvar="RALLYPOINT_TOKEN", help="API token.")]
User = Annotated[str | None, typer.Option("--user", envvar="RALLYPOINT_USER", help="Account name.")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")]
Cert = Annotated[str | None, typer.Option("--cert", help="Client certificate (PEM) for HTTPS.")]
Ca = Annotated[str | None, typer.Option("--ca", help="CA certificate (PEM) to check the server.")]


def _iso(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _print(exercise: dict[str, Any]) -> None:
    console = Console()
    console.print(f"[bold]{exercise['id']}[/bold]  {exercise['state']}  {exercise['name']}")
    console.print(f"  clock {_clock(exercise['clock_s'])} at {exercise['speed']:g}x   units {exercise['units']}"
                  f"   sent {exercise['sent']}   injects {exercise['injects_done']}/{len(exercise['injects'])}")
    console.print(f"  controller {exercise['controller']}   started {_iso(exercise['started_at']) or '-'}"
                  f"   updated {_iso(exercise['updated_at'])}")
    if exercise.get("missions"):
        console.print(f"  live missions allowed: {', '.join(exercise['missions'])}")


def _control(ctx: typer.Context, conn: tuple[str, str | None, str | None, bool, str | None, str | None],
             exercise_id: str, action: str, as_json: bool, *, inject: str | None = None,
             speed: float | None = None) -> None:
    server, token, user, password_stdin, cert, ca = conn
    connect(ctx, server=server, token=token, user=user, password_stdin=password_stdin, cert=cert, ca=ca)
    with session(ctx) as client:
        answer = client.control_exercise(exercise_id, action, inject=inject, speed=speed)
    if as_json:
        typer.echo(json.dumps(answer))
    else:
        typer.echo(f"{action} queued for {exercise_id} as command {answer['seq']}")


@exercise_app.command("list")
def list_exercises(ctx: typer.Context, as_json: Json = False, server: Server = DEFAULT_SERVER, token: Token = None,
                   user: User = None, password_stdin: PasswordStdin = False, cert: Cert = None, ca: Ca = None) -> None:
    """Exercises registered on the server that you may see, newest first."""
    connect(ctx, server=server, token=token, user=user, password_stdin=password_stdin, cert=cert, ca=ca)
    with session(ctx) as client:
        found = client.exercises()
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table("id", "state", "clock", "speed", "units", "sent", "injects", "controller", "name")
    for e in found:
        table.add_row(e["id"], e["state"], _clock(e["clock_s"]), f"{e['speed']:g}x", str(e["units"]), str(e["sent"]),
                      f"{e['injects_done']}/{len(e['injects'])}", e["controller"], e["name"])
    Console().print(table)


@exercise_app.command("status")
def status(ctx: typer.Context, exercise_id: Id, as_json: Json = False, server: Server = DEFAULT_SERVER,
           token: Token = None, user: User = None, password_stdin: PasswordStdin = False, cert: Cert = None,
           ca: Ca = None) -> None:
    """One exercise: state, exercise clock, speed, units, events sent, injects done."""
    connect(ctx, server=server, token=token, user=user, password_stdin=password_stdin, cert=cert, ca=ca)
    with session(ctx) as client:
        exercise = client.exercise(exercise_id)
    if as_json:
        typer.echo(json.dumps(exercise, indent=2))
    else:
        _print(exercise)


def _action_command(action: str, summary: str) -> Callable[..., None]:
    """The command for a control action that takes nothing but the exercise id."""

    def command(ctx: typer.Context, exercise_id: Id, as_json: Json = False, server: Server = DEFAULT_SERVER,
                token: Token = None, user: User = None, password_stdin: PasswordStdin = False, cert: Cert = None,
                ca: Ca = None) -> None:
        _control(ctx, (server, token, user, password_stdin, cert, ca), exercise_id, action, as_json)

    command.__doc__ = summary
    command.__name__ = action
    return command


for _action, _summary in (
    ("start", "Start the exercise clock (a runner started with --start paused waits for this)."),
    ("pause", "Pause the exercise clock: units hold still and stay silent, injects wait."),
    ("resume", "Resume a paused exercise."),
    ("stop", "End the exercise (it cannot be restarted; register a new one)."),
):
    exercise_app.command(_action)(_action_command(_action, _summary))


@exercise_app.command("inject")
def inject(ctx: typer.Context, exercise_id: Id,
           inject_id: Annotated[str, typer.Argument(help="The inject's id in the scenario.")],
           as_json: Json = False, server: Server = DEFAULT_SERVER, token: Token = None, user: User = None,
           password_stdin: PasswordStdin = False, cert: Cert = None, ca: Ca = None) -> None:
    """Perform one of the scenario's injects now, whatever its scheduled time or trigger."""
    _control(ctx, (server, token, user, password_stdin, cert, ca), exercise_id, "inject", as_json, inject=inject_id)


@exercise_app.command("speed")
def speed(ctx: typer.Context, exercise_id: Id,
          factor: Annotated[float, typer.Argument(help=f"Exercise clock speed, {MIN_SPEED:g} to {MAX_SPEED:g}.")],
          as_json: Json = False, server: Server = DEFAULT_SERVER, token: Token = None, user: User = None,
          password_stdin: PasswordStdin = False, cert: Cert = None, ca: Ca = None) -> None:
    """Change the exercise clock's speed (1x to 10x)."""
    if not MIN_SPEED <= factor <= MAX_SPEED:
        raise typer.BadParameter(f"{MIN_SPEED:g} to {MAX_SPEED:g}", param_hint="FACTOR")
    _control(ctx, (server, token, user, password_stdin, cert, ca), exercise_id, "speed", as_json, speed=factor)
