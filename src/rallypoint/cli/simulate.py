"""``rallypoint simulate feeds``: a generated scenario on the real wire formats, to a running server.

The main app mounts this with ``app.add_typer(simulate_app, name="simulate")``. The scenario, its
sources, the output forms and the recording format are described in docs/fusion.md. Bad options
exit with status 2 and one line saying what to fix.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import numpy as np
import typer

from rallypoint.clock import SystemClock
from rallypoint.connectors.emit_play import OutputSpec, Played, Player, parse_output
from rallypoint.fusion.metrics import mean_ospa
from rallypoint.fusion.picture_score import PictureScore
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
    score: Annotated[
        str | None, typer.Option(help="Score the server's picture: its plain CoT port HOST:PORT.")
    ] = None,
    score_every: Annotated[float, typer.Option(help="Seconds between two scores of the picture.")] = 5.0,
    cutoff: Annotated[float, typer.Option(help="OSPA cutoff c in metres.")] = 500.0,
    order: Annotated[float, typer.Option(help="OSPA order p.")] = 2.0,
) -> None:
    """Generate a scenario and send it to a server's feeds (and/or record it for offline evaluation).

    With no output, the recording is written at once and nothing is sent.
    """
    spec = SCENARIOS.get(scenario)
    if spec is None:
        _fail(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    if speedup <= 0 or (duration is not None and duration <= 0) or wait < 0:
        _fail("--speedup and --duration must be positive and --wait not negative")
    if score_every <= 0 or cutoff <= 0 or order < 1:
        _fail("--score-every and --cutoff must be positive and --order at least 1")
    try:
        outputs = _outputs(sbs or [], ais or [], nmea or [], cot or [])
        picture = parse_output(SourceKind.RADAR, f"connect:{score}") if score else None
    except ValueError as exc:
        _fail(str(exc))
    if picture is not None and not outputs:
        _fail("--score needs at least one of --sbs, --ais, --nmea, --cot")
    if not outputs and record is None:
        _fail("nothing to do: give --record FILE and/or at least one of --sbs, --ais, --nmea, --cot")
    world = build_scenario(spec, seed, DEFAULT_START, duration_s=duration)
    reports = simulate(world)
    if not outputs:
        assert record is not None
        _record(record, world, reports, speedup)
        typer.echo(f"recorded {len(reports)} reports of {len(world.targets)} targets to {record}")
        return
    scoring = None
    if picture is not None:
        scoring = Scoring(picture.host, picture.port, _scorer(world, outputs, cutoff, order), score_every,
                          float(world.targets[0].times[-1]) if world.targets else 0.0)
    played = asyncio.run(_play(reports, outputs, speedup, wait, scoring))
    if record is not None:
        # The same seed gives the same scenario; only its start moves to when playing began.
        world = build_scenario(spec, seed, played.start, duration_s=duration)
        _record(record, world, simulate(world), speedup)
    summary: dict[str, object] = {"start": played.start.isoformat(), "reports": len(reports), "outputs": played.outputs}
    if scoring is not None:
        samples = scoring.scorer.samples
        summary["ospa"] = {
            "c": cutoff, "p": order, "mean": mean_ospa([s.ospa for s in samples]),
            "rejected_events": scoring.scorer.rejected,
            "samples": [{"t": round(s.scenario_s, 1), "ospa": round(s.ospa.value, 1), "tracks": s.tracks,
                         "targets": s.targets} for s in samples],
        }
    typer.echo(json.dumps(summary, indent=2))


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


@dataclass
class Scoring:
    """Where the server's picture is read from, what scores it, and how often."""

    host: str
    port: int
    scorer: PictureScore
    every_s: float
    until_s: float  # the scenario's length: past it the truth stands still while late reports still arrive


def _scorer(world: Scenario, outputs: list[OutputSpec], cutoff: float, order: float) -> PictureScore:
    """A scorer whose truth is every target some output reports (a ground unit only with its own --nmea)."""
    kinds = {o.kind for o in outputs}
    units = {o.unit for o in outputs if o.unit}
    seen = [t for t in world.targets if any(
        t.domain in s.domains and s.kind in kinds and (s.kind is not SourceKind.GPS or t.target_id in units)
        for s in DEFAULT_SOURCES)]

    def truth(scenario_s: float) -> np.ndarray:
        return np.array([[(s := t.state_at(scenario_s, world.frame)).east, s.north] for t in seen]).reshape(-1, 2)

    return PictureScore(world.frame, truth, c=cutoff, p=order)


async def _play(
    reports: list[SimReport], outputs: list[OutputSpec], speedup: float, wait: float, scoring: Scoring | None
) -> Played:
    player = Player(outputs, SystemClock(), random.Random())
    try:
        await player.open()
    except OSError as exc:
        _fail(f"cannot open an output: {exc.strerror or exc}")
    for spec, port in player.listening_ports():
        typer.echo(f"simulate: {spec.kind} listening on {spec.host}:{port}", err=True)
    if scoring is None:
        return await player.play(reports, speedup=speedup, wait_s=wait)
    async with asyncio.TaskGroup() as tg:
        playing = tg.create_task(player.play(reports, speedup=speedup, wait_s=wait))
        reading = tg.create_task(_read_picture(scoring, wait))
        await player.started.wait()
        assert player.start is not None
        while not playing.done():
            # Pacing of the scoring instants (a product interval, not synchronisation).
            await asyncio.wait({playing}, timeout=scoring.every_s)
            now = datetime.now(UTC)
            scenario_s = (now - player.start).total_seconds() * speedup
            if scenario_s > scoring.until_s:
                continue
            sample = scoring.scorer.sample(now, scenario_s)
            typer.echo(f"simulate: t={sample.scenario_s:.0f}s OSPA {sample.ospa.value:.1f} m "
                       f"({sample.tracks} tracks, {sample.targets} targets)", err=True)
        reading.cancel()
    return playing.result()


async def _read_picture(scoring: Scoring, wait: float) -> None:
    """Connect to the server's CoT port (retrying for up to ``wait`` seconds while it starts) and score what comes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            reader, writer = await asyncio.open_connection(scoring.host, scoring.port)
            break
        except OSError as exc:
            if loop.time() >= deadline:
                typer.echo(f"simulate: cannot score, {scoring.host}:{scoring.port}: {exc.strerror or exc}", err=True)
                return
            await asyncio.sleep(0.5)  # retry pacing while the server starts
    try:
        while data := await reader.read(65536):
            scoring.scorer.receive(data)
    finally:
        writer.close()
