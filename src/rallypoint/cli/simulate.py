"""``rallypoint simulate feeds``: a generated scenario on the real wire formats, to a running server.

The main app mounts this with ``app.add_typer(simulate_app, name="simulate")``. The scenario, its
sources, the output forms and the recording format are described in docs/fusion.md. Bad options
exit with status 2 and one line saying what to fix.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from rallypoint.clock import SystemClock
from rallypoint.connectors.emit_play import OutputSpec, Played, Player, parse_output
from rallypoint.fusion.scenario import DEFAULT_START, SCENARIOS, Scenario, build_scenario
from rallypoint.fusion.scenario_record import record_lines
from rallypoint.fusion.scenario_sources import DEFAULT_SOURCES, SimReport, SourceKind, simulate

simulate_app = typer.Typer(help="Simulated sources for evaluating feeds and fusion.", no_args_is_help=True)

_ADDRESS_HELP = r"\[listen:|connect:|udp:]HOST:PORT"


@simulate_app.command("feeds")
def feeds_command(
    scenario: Annotated[str, typer.Option(help=f"Scenario: {', '.join(SCENARIOS)}.")] = "mixed",
    duration: Annotated[float | None, typer.Option(help="Seconds of scenario (default: the scenario's).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same scenario.")] = 1,
    speedup: Annotated[float, typer.Option(help="Play X times faster (objects move X times faster).")] = 1.0,
    sbs: Annotated[list[str] | None, typer.Option(help=f"ADS-B as SBS-1; {_ADDRESS_HELP}, default listen.")] = None,
    ais: Annotated[list[str] | None, typer.Option(help=f"AIS as !AIVDM; {_ADDRESS_HELP}, default udp.")] = None,
    nmea: Annotated[
        list[str] | None, typer.Option(help=f"NMEA GPS, one per ground unit; {_ADDRESS_HELP}, default listen.")
    ] = None,
    cot: Annotated[list[str] | None, typer.Option(help=f"Radar plots as CoT; {_ADDRESS_HELP}, default listen.")] = None,
    record: Annotated[Path | None, typer.Option(help="Write truth and reports as JSON lines to FILE.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the server on every TCP output.")] = 30.0,
) -> None:
    """Generate a scenario and send it to a server's feeds (and/or record it for offline evaluation).

    With no output, the recording is written at once and nothing is sent.
    """
    spec = SCENARIOS.get(scenario)
    if spec is None:
        _fail(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    if speedup <= 0 or (duration is not None and duration <= 0) or wait < 0:
        _fail("--speedup and --duration must be positive and --wait not negative")
    try:
        outputs = _outputs(sbs or [], ais or [], nmea or [], cot or [])
    except ValueError as exc:
        _fail(str(exc))
    if not outputs and record is None:
        _fail("nothing to do: give --record FILE and/or at least one of --sbs, --ais, --nmea, --cot")
    world = build_scenario(spec, seed, DEFAULT_START, duration_s=duration)
    reports = simulate(world)
    if not outputs:
        assert record is not None
        _record(record, world, reports, speedup)
        typer.echo(f"recorded {len(reports)} reports of {len(world.targets)} targets to {record}")
        return
    played = asyncio.run(_play(reports, outputs, speedup, wait))
    if record is not None:
        # The same seed gives the same scenario; only its start moves to when playing began.
        world = build_scenario(spec, seed, played.start, duration_s=duration)
        _record(record, world, simulate(world), speedup)
    typer.echo(json.dumps({"start": played.start.isoformat(), "reports": len(reports), "outputs": played.outputs},
                          indent=2))


def _fail(message: str) -> NoReturn:
    typer.echo(f"simulate: {message}", err=True)
    raise typer.Exit(2)


def _outputs(sbs: list[str], ais: list[str], nmea: list[str], cot: list[str]) -> list[OutputSpec]:
    outputs = [parse_output(SourceKind.ADSB, value) for value in sbs]
    outputs += [parse_output(SourceKind.AIS, value) for value in ais]
    # One NMEA stream is one receiver: the n-th --nmea carries the n-th ground unit.
    outputs += [parse_output(SourceKind.GPS, value, unit=f"ground-{n}") for n, value in enumerate(nmea, start=1)]
    outputs += [parse_output(SourceKind.RADAR, value) for value in cot]
    return outputs


def _record(path: Path, world: Scenario, reports: list[SimReport], speedup: float) -> None:
    try:
        with path.open("wb") as out:
            out.writelines(record_lines(world, DEFAULT_SOURCES, reports, speedup=speedup))
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")


async def _play(reports: list[SimReport], outputs: list[OutputSpec], speedup: float, wait: float) -> Played:
    player = Player(outputs, SystemClock(), random.Random())
    try:
        await player.open()
    except OSError as exc:
        _fail(f"cannot open an output: {exc.strerror or exc}")
    for spec, port in player.listening_ports():
        typer.echo(f"simulate: {spec.kind} listening on {spec.host}:{port}", err=True)
    return await player.play(reports, speedup=speedup, wait_s=wait)
