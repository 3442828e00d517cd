"""``rallypoint airdrop plan FILE.toml [--json] [--svg OUT.svg]``: an advisory cargo drop plan.

The main app mounts this with ``app.add_typer(airdrop_app, name="airdrop")``. The file format and
the output are described in docs/airdrop.md; invalid input exits with status 2 and one line saying
what to fix.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rallypoint.model.airdrop import AirdropPlan
from rallypoint.services.airdrop import PlanError, from_mapping, plan
from rallypoint.services.airdrop.svg import render_svg

airdrop_app = typer.Typer(help="Cargo airdrop planning (advisory).", no_args_is_help=True)

MAX_FILE_BYTES = 4 * 1024 * 1024


def load_plan_file(path: Path) -> AirdropPlan:
    """Read, validate and compute the plan in ``path`` (``PlanError`` for anything wrong with it)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise PlanError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PlanError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{path}: not valid TOML: {exc}") from exc
    return plan(from_mapping(data))


def _show(result: AirdropPlan, console: Console) -> None:
    console.print(f"[bold]Cargo airdrop plan[/bold] [yellow]{escape(result.advisory)}[/yellow]")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("CARP", f"{result.carp.lat:.6f}, {result.carp.lon:.6f}"),
        ("PI", f"{result.pi.lat:.6f}, {result.pi.lon:.6f}"),
        ("Run-in", f"{result.run_in_deg:05.1f}° true ({result.run_in_source})"),
        ("Time of fall", f"{result.time_of_fall_s:.1f} s"),
        ("Forward travel", f"{result.forward_travel_m:.0f} m"),
        ("Drift", f"{result.drift_distance_m:.0f} m (E {result.drift_m.east:+.0f}, N {result.drift_m.north:+.0f})"),
        ("Ballistic wind", f"{result.ballistic_wind.from_deg:03.0f}° / {result.ballistic_wind.speed_kt:.1f} kt"),
        ("D = K·A·V", f"{result.cross_check.d_m:.0f} m (K {result.cross_check.k:.2f}, "
                      f"{result.cross_check.k_source})"),
    ]
    if result.green_light is not None:
        g = result.green_light
        rows.append(("Green light", f"{g.opens_s:+.1f} s to {g.closes_s:+.1f} s around the CARP "
                                    f"({g.duration_s:.1f} s)"))
    else:
        rows.append(("Green light", "none"))
    if result.stick.count > 1:
        rows.append(("Stick", f"{result.stick.count} loads, {result.stick.spacing_m:.0f} m apart, "
                              f"{result.stick.length_m:.0f} m long"))
    dz = result.dz
    rows.append(("DZ", f"{dz.length_m:.0f} x {dz.width_m:.0f} m; needs {dz.required_length_m:.0f} x "
                       f"{dz.required_width_m:.0f} m ({dz.rule}) {'ok' if dz.fits else 'TOO SMALL'}"))
    if result.dispersion is not None:
        d = result.dispersion
        rows.append(("Dispersion", f"CEP {d.cep_m:.0f} m, R95 {d.r95_m:.0f} m, P(inside DZ) {d.p_inside_dz:.2f} "
                                   f"({d.samples} samples, seed {d.seed})"))
    for name, value in rows:
        table.add_row(name, escape(value))
    console.print(table)
    for warning in result.warnings:
        console.print(f"[red]warning:[/red] {escape(warning)}")
    console.print("[dim]Assumptions:[/dim]")
    for item in result.assumptions:
        console.print(f"[dim]- {escape(item)}[/dim]")


@airdrop_app.command("plan")
def plan_command(
    file: Annotated[Path, typer.Argument(help="Plan file (TOML): [drop_zone], [aircraft], [load], [[winds]] ...")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as one JSON object.")] = False,
    svg: Annotated[Path | None, typer.Option("--svg", help="Also write an SVG sketch of the plan here.")] = None,
) -> None:
    """Compute the CARP, green-light window and impact footprint for a cargo drop (advisory)."""
    try:
        result = load_plan_file(file)
    except PlanError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if svg is not None:
        try:
            svg.write_text(render_svg(result), encoding="utf-8")
        except OSError as exc:
            typer.echo(f"error: cannot write {svg}: {exc.strerror or exc}", err=True)
            raise typer.Exit(1) from None
    if json_out:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        _show(result, Console(highlight=False))


if __name__ == "__main__":
    airdrop_app()
