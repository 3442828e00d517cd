"""``rallypoint bench``: load a Rallypoint (or any TAK) server and report what it delivered."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rallypoint.loadgen import BenchError, BenchReport, BenchSpec, BenchSpecError, run_bench
from rallypoint.loadgen.report import render_rows, to_json
from rallypoint.loadgen.spec import parse_target


def bench_command(
    host: Annotated[str, typer.Option(help="Server address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Server CoT port (plain TCP, or TLS with --tls).")] = 8087,
    tls: Annotated[bool, typer.Option("--tls", help="Connect with TLS.")] = False,
    ca: Annotated[str | None, typer.Option(help="CA certificate (PEM) to verify the server with.")] = None,
    cert: Annotated[str | None, typer.Option(help="Client certificate (PEM).")] = None,
    key: Annotated[str | None, typer.Option(help="Client private key (PEM).")] = None,
    clients: Annotated[int, typer.Option(help="Fan-out: number of clients, each sending and receiving.")] = 10,
    rate: Annotated[float, typer.Option(help="Fan-out: position reports per second per client.")] = 1.0,
    duration: Annotated[float, typer.Option(help="Measured window in seconds.")] = 10.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    proto: Annotated[
        str, typer.Option(help="Wire format: xml, protobuf (TAK protocol v1), or protobuf-deflate (compressed).")
    ] = "xml",
    mode: Annotated[
        str, typer.Option(help="fanout: every client sends at --rate; blast: one sender as fast as possible.")
    ] = "fanout",
    receivers: Annotated[int, typer.Option(help="Blast: number of receiving clients.")] = 10,
    server_pid: Annotated[int | None, typer.Option(help="Sample this process's CPU and RSS during the run.")] = None,
    warmup: Annotated[float, typer.Option(help="Seconds allowed for the warm-up SA exchange.")] = 10.0,
    processes: Annotated[
        int,
        typer.Option(help="Worker processes for the clients; raise it for thousands of clients or >150k deliveries/s."),
    ] = 1,
    drain: Annotated[
        float, typer.Option(help="Seconds to wait after the window for late deliveries (stops early when all arrived).")
    ] = 5.0,
    metrics_url: Annotated[
        str | None,
        typer.Option(
            "--metrics-url",
            help="The server's Prometheus /metrics URL; names the limit behind connections the server closed.",
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="host:port of a server; repeat for several nodes of one cluster (clients dealt round-robin). "
            "Replaces --host/--port.",
        ),
    ] = None,
) -> None:
    """Connect many CoT clients, send position reports and measure delivery, latency and server usage."""
    try:
        targets = tuple(parse_target(text) for text in target or ())
    except BenchSpecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if targets:
        host, port = targets[0]
    spec = BenchSpec(
        host=host,
        port=port,
        targets=targets,
        tls=tls,
        ca=ca,
        cert=cert,
        key=key,
        clients=clients,
        rate=rate,
        duration=duration,
        proto=proto,
        mode=mode,
        receivers=receivers,
        server_pid=server_pid,
        warmup=warmup,
        processes=processes,
        drain=drain,
        run_id=secrets.token_hex(3),
        metrics_url=metrics_url,
    )
    try:
        report = run_bench(spec)
    except BenchSpecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except (BenchError, OSError) as exc:
        typer.echo(f"bench failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    if json_output:
        typer.echo(to_json(report))
    else:
        Console().print(_table(report))


def _table(report: BenchReport) -> Table:
    table = Table(title="rallypoint bench", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", overflow="fold")
    for label, value in render_rows(report):
        table.add_row(label, value)
    return table


def main() -> None:
    """Run ``bench`` as a stand-alone command (``python -m rallypoint.cli.bench``)."""
    typer.run(bench_command)


if __name__ == "__main__":
    main()
