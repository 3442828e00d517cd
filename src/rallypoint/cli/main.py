"""``rallypoint`` command line: serve, cert, ca, history, bench (contract in docs/cli.md)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from rallypoint.cli.airdrop import airdrop_app
from rallypoint.cli.audit import audit_app
from rallypoint.cli.bench import bench_command
from rallypoint.cli.cert import ca_app, cert_app
from rallypoint.cli.designations import designation_app
from rallypoint.cli.exercise import exercise_app
from rallypoint.cli.exercise_control import status as _exercise_control  # noqa: F401  (registers itself)
from rallypoint.cli.exercise_report import report_command as _exercise_report  # noqa: F401  (registers itself)
from rallypoint.cli.exercise_run import run_command as _exercise_run  # noqa: F401  (registers itself)
from rallypoint.cli.history import history_app
from rallypoint.cli.logs import configure_logging
from rallypoint.cli.onboard import onboard_command
from rallypoint.cli.plans import plan_app
from rallypoint.cli.replay import replay_command
from rallypoint.cli.simulate import simulate_app
from rallypoint.cli.tasks import task_app
from rallypoint.cli.tiles import tiles_app
from rallypoint.cli.users import user_app
from rallypoint.cli.wording import RallypointGroup
from rallypoint.config import load_settings, with_feed_urls
from rallypoint.connectors.meshtastic.spec import mesh_specs
from rallypoint.connectors.spec import feed_specs
from rallypoint.errors import BusError, ConfigError, StorageError

app = typer.Typer(
    help="Rallypoint: command-and-coordination server for field teams.", no_args_is_help=True, cls=RallypointGroup
)
app.add_typer(cert_app, name="cert")
app.add_typer(ca_app, name="ca")
app.add_typer(history_app, name="history")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(airdrop_app, name="airdrop")
app.add_typer(designation_app, name="designation")
app.add_typer(simulate_app, name="simulate")
app.add_typer(task_app, name="task")
app.add_typer(plan_app, name="plan")
app.add_typer(tiles_app, name="tiles")
app.add_typer(exercise_app, name="exercise")
app.command("bench")(bench_command)
app.command("onboard")(onboard_command)
app.command("replay")(replay_command)


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option(help="TOML configuration file.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data directory (default ./rallypoint-data).")] = None,
    bind: Annotated[str | None, typer.Option(help="Address for TLS listeners (default 0.0.0.0).")] = None,
    plain_bind: Annotated[str | None, typer.Option(help="Address for plaintext listeners (default 127.0.0.1).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Simulate units moving so clients see a live picture.")] = False,
    cot_port: Annotated[int | None, typer.Option(help="Plain TCP CoT port (default 0 = off; TAK uses 8087).")] = None,
    tls_port: Annotated[int | None, typer.Option(help="TLS CoT port (default 8089).")] = None,
    api_port: Annotated[int | None, typer.Option(help="HTTPS API port (default 8443).")] = None,
    http_port: Annotated[int | None, typer.Option(help="Plain HTTP port for health/metrics (default 8080).")] = None,
    enroll_port: Annotated[int | None, typer.Option(help="Certificate enrollment port (default 8446).")] = None,
    udp: Annotated[bool, typer.Option("--udp", help="Enable the UDP mesh input (6969 unless --udp-port).")] = False,
    udp_port: Annotated[int | None, typer.Option(help="UDP mesh input port; giving it enables the input.")] = None,
    federation_port: Annotated[int | None, typer.Option(help="Federation port (default 9001).")] = None,
    storage: Annotated[str | None, typer.Option(help="sqlite:///path, postgresql://user@host/db, memory://")] = None,
    bus: Annotated[str | None, typer.Option(help="'local' (default) or nats://host:port")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes sharing the ports through one NATS bus (default 1).")
    ] = None,
    worker: Annotated[
        bool, typer.Option("--worker", hidden=True, help="Run as a worker of a supervising serve (settings on stdin).")
    ] = False,
    log_format: Annotated[str | None, typer.Option(help="json (default) or text")] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO (default), WARNING")] = None,
    feed: Annotated[
        list[str] | None, typer.Option(help="Source feed URL, repeatable (sbs+tcp://host:30003; see docs/feeds.md).")
    ] = None,
    tile_url: Annotated[
        str | None, typer.Option(help="Raster tile URL template the web picture draws (https://host/{z}/{x}/{y}.png).")
    ] = None,
) -> None:
    """Run the server until SIGTERM/SIGINT, then drain, flush and exit 0."""
    if worker:
        _serve_worker()
        return
    overrides: dict[str, Any] = {
        "data_dir": data_dir, "bind": bind, "plain_bind": plain_bind, "cot_port": cot_port, "tls_port": tls_port,
        "api_port": api_port, "http_port": http_port, "enroll_port": enroll_port, "udp_port": udp_port,
        "federation_port": federation_port, "storage": storage, "bus": bus, "log_format": log_format,
        "log_level": log_level, "demo": True if demo else None, "workers": workers,
        "udp_enabled": True if (udp or udp_port) else None,
        "web": {"tile_url": tile_url} if tile_url is not None else None,
    }
    try:
        settings = with_feed_urls(load_settings(config, overrides=overrides), feed or ())
        feed_specs(settings.feeds)  # every feed URL checked before anything starts
        mesh_specs(settings.meshtastic)  # and every Meshtastic mesh
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.log_format)
    if settings.workers > 1:
        from rallypoint.node.supervisor import Supervisor

        code = _run(Supervisor(settings).run())
        if code:
            raise typer.Exit(code)
        return
    from rallypoint.node import build_node

    async def main() -> None:
        node = build_node(settings)
        await node.run()

    _run(main())


def _serve_worker() -> None:
    """One worker of ``serve --workers N``: its settings arrive on stdin, its readiness leaves on stdout."""
    from rallypoint.node.workers import read_spec, serve_worker

    try:
        spec = read_spec(sys.stdin.buffer)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(spec.settings.log_level, spec.settings.log_format)
    _run(serve_worker(spec, stdin=sys.stdin.buffer, ready_out=sys.stdout.buffer))


def _run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main`` on uvloop when installed; startup failures become a message and an exit code."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        return runner(main)
    except* ConfigError as group:
        for error in group.exceptions:
            typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except* StorageError as storage_group:
        # An unreachable database at start (after the store's retries) or an unreadable file.
        for failure in storage_group.exceptions:
            typer.echo(f"storage error: {failure}", err=True)
        raise typer.Exit(1) from None
    except* BusError as bus_group:
        # NATS unreachable at start, or refusing the stream, bucket or consumer the bus needs.
        for bus_failure in bus_group.exceptions:
            typer.echo(f"bus error: {bus_failure}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
