"""``rallypoint exercise run FILE``: play a scenario against a real server (docs/exercises.md, "Running").

Every simulated unit connects as a real client (plain TCP, TLS with a client certificate, or TAK
protobuf); injects that need the native API (tasks, designations, feeds) and live control use
``--api`` with the runner's account. A scenario that does not check out exits 2 with one
``FILE:LINE: problem`` per line; a server that cannot be reached exits 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from rallypoint.cli.exercise import exercise_app
from rallypoint.client.http import ApiError
from rallypoint.exercise.api import ExerciseApi, scenario_digest
from rallypoint.exercise.clock import MAX_SPEED, MIN_SPEED
from rallypoint.exercise.runner import Runner, RunOptions, percentile
from rallypoint.exercise.scenario import ScenarioInvalid, load_scenario
from rallypoint.exercise.scenario_checker import format_time
from rallypoint.exercise.transport import TargetError, parse_target


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"exercise run: {message}", err=True)
    return typer.Exit(code)


@exercise_app.command("run")
def run_command(
    file: Annotated[Path, typer.Argument(help="Scenario file (TOML, see docs/exercises.md).")],
    server: Annotated[str, typer.Option(help="CoT port of the server: tcp://HOST:PORT or tls://HOST:PORT.")]
    = "tcp://127.0.0.1:8087",
    speed: Annotated[float, typer.Option(help=f"Exercise clock speed, {MIN_SPEED:g} to {MAX_SPEED:g}.")] = 1.0,
    exercise_id: Annotated[str | None, typer.Option(help="Exercise id (default: the scenario's).")] = None,
    start: Annotated[str, typer.Option(help="now, or paused (wait for 'rallypoint exercise start'; needs --api).")]
    = "now",
    protocol: Annotated[str, typer.Option(help="xml, or protobuf (TAK protocol 1, as the server offers it).")]
    = "xml",
    cert: Annotated[str | None, typer.Option(help="Client certificate (PEM) for tls:// and HTTPS.")] = None,
    key: Annotated[str | None, typer.Option(help="Its private key (PEM).")] = None,
    ca: Annotated[str | None, typer.Option(help="CA certificate (PEM) to check the server.")] = None,
    api: Annotated[str | None, typer.Option(help="Native API base URL for API injects and live control.")] = None,
    token: Annotated[str | None, typer.Option(envvar="RALLYPOINT_TOKEN", help="API token.")] = None,
    user: Annotated[str | None, typer.Option(envvar="RALLYPOINT_USER", help="API account name.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's summary as JSON at the end.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
) -> None:
    """Run a scenario: simulated units connect as real clients and injects happen on time or on triggers."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise _fail(f"--speed must be within {MIN_SPEED:g}..{MAX_SPEED:g} (got {speed:g})")
    if start not in ("now", "paused"):
        raise _fail("--start must be now or paused")
    if start == "paused" and api is None:
        raise _fail("--start paused needs --api (nothing else could start the exercise)")
    try:
        scenario = load_scenario(file, exercise_id=exercise_id)
        target = parse_target(server, ca=ca, cert=cert, key=key, protocol=protocol)
    except ScenarioInvalid as exc:
        raise _fail(f"{len(exc.problems)} problem(s) in the scenario\n{exc}") from None
    except TargetError as exc:
        raise _fail(str(exc)) from None
    password = os.environ.get("RALLYPOINT_PASSWORD")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    if user is not None and not password:
        raise _fail("give the password with RALLYPOINT_PASSWORD or --password-stdin")
    display = None if quiet or as_json else _Display(scenario.duration_s)

    async def main() -> dict[str, Any]:
        client = None
        if api is not None:
            client = ExerciseApi(api.rstrip("/"), token=token, username=user, password=password,
                                 cert=(cert, key) if cert and key else None, ca=ca)
        options = RunOptions(target, speed=speed, start_paused=start == "paused", api=client,
                             scenario_sha256=scenario_digest(file.read_bytes()))
        try:
            runner = Runner(scenario, options, on_progress=display.update if display else None)
            return await runner.run()
        finally:
            if client is not None:
                await client.close()

    try:
        if display is not None:
            with display.progress:
                summary = asyncio.run(main())
        else:
            summary = asyncio.run(main())
    except ConnectionError as exc:
        raise _fail(str(exc), 1) from None
    except ApiError as exc:
        raise _fail(f"the API refused: {exc.status} {exc.error}: {exc.detail}", 1) from None
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the API at {api}: {exc}", 1) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        lag = summary["lag_ms"]
        typer.echo(f"exercise {summary['exercise']} {summary['state']} at {format_time(summary['clock_s'])}: "
                   f"{summary['sent']} reports sent by {summary['units']} units, {len(summary['injects'])} injects; "
                   f"lag p50 {lag['p50']} ms, p99 {lag['p99']} ms, max {lag['max']} ms")


class _Display:
    """A progress bar on stderr: exercise time against the duration, with what was sent."""

    def __init__(self, duration_s: float) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                 console=Console(stderr=True))
        self._task = self.progress.add_task("ready", total=duration_s, info="")

    def update(self, runner: Runner) -> None:
        clock = runner.clock_s()
        stats = runner.stats
        info = (f"{format_time(clock)}/{format_time(runner.scenario.duration_s)} x{runner.clock.speed:g}  "
                f"sent {runner.links.written}  injects {len(stats.injects)}/{len(runner.scenario.injects)}  "
                f"units {runner.links.connected}  lag p99 {percentile(stats.lags_s[-5000:], 0.99) * 1000:.0f} ms")
        self.progress.update(self._task, completed=min(clock, runner.scenario.duration_s),
                             description=runner.clock.state.value, info=info)
