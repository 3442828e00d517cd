"""``rallypoint tiles``: local map tiles (MBTiles, PMTiles) for the web picture, kept in the data dir."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from rallypoint.cli.wording import RallypointGroup
from rallypoint.errors import ConfigError
from rallypoint.web.tiles import inspect_tiles, installed, tiles_dir

tiles_app = typer.Typer(help="Local map tiles for the web picture (MBTiles, PMTiles).", no_args_is_help=True,
                        cls=RallypointGroup)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Server data directory.")]


@tiles_app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="An MBTiles or PMTiles (version 3) file.")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the set (default: the file's stem).")] = None,
    data_dir: DataDir = Path("rallypoint-data"),
    replace: Annotated[bool, typer.Option("--replace", help="Replace a set of the same name.")] = False,
) -> None:
    """Check FILE and copy it into <data dir>/tiles/, where the running server serves it."""
    try:
        tile_set = inspect_tiles(file, name)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    target_dir = tiles_dir(data_dir)
    target = target_dir / f"{tile_set.name}.{tile_set.kind}"
    # Both kinds answer at /tiles/<name>/..., so a name is one set whatever its kind.
    other = target.with_suffix(".mbtiles" if tile_set.kind == "pmtiles" else ".pmtiles")
    if (target.exists() or other.exists()) and not replace:
        typer.echo(f"error: a tile set named {tile_set.name!r} exists; use --replace", err=True)
        raise typer.Exit(2)
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    shutil.copyfile(file, partial)
    partial.replace(target)  # the server never sees half a file
    other.unlink(missing_ok=True)
    typer.echo(f"{tile_set.name}: {tile_set.kind} {tile_set.format}, zoom {tile_set.minzoom}-{tile_set.maxzoom}, "
               f"served at {tile_set.url}")


@tiles_app.command("list")
def list_sets(data_dir: DataDir = Path("rallypoint-data")) -> None:
    """The tile sets in the data directory."""
    for s in installed(data_dir):
        typer.echo(f"{s.name}\t{s.kind}\t{s.format}\t{s.minzoom}-{s.maxzoom}\t{s.url}")
