"""`rallypoint bench` against the baseline relay, end to end over real sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import client_bundle
from tests.support.metrics import metric_value
from tests.support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
RELAY = ROOT / "bench" / "relay.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture
def relay() -> Iterator[tuple[int, int]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(RELAY), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the relay is listening (or exits)
        assert "relay listening" in line, line
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _bench(*args: str) -> dict[str, object]:
    cmd = [sys.executable, "-m", "rallypoint.cli.bench", "--host", "127.0.0.1", "--json", *args]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=90, check=False)
    assert done.returncode == 0, (done.stdout, done.stderr, time.monotonic() - started)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_fanout_against_relay_delivers_everything(relay: tuple[int, int]) -> None:
    port, pid = relay
    report = _bench("--port", str(port), "--clients", "4", "--rate", "5", "--duration", "2", "--server-pid", str(pid))
    assert report["delivery_ratio"] == 1.0
    assert isinstance(report["delivered"], int) and report["delivered"] > 0
    # Each event reaches the three other clients.
    assert report["expected"] == report["sent"] * 3  # type: ignore[operator]
    latency = report["latency"]
    assert isinstance(latency, dict) and latency["samples"] > 0
    server = report["server"]
    assert isinstance(server, dict) and server["pid"] == pid and server["rss_mb_max"] > 0


def test_blast_with_two_processes_merges_results(relay: tuple[int, int]) -> None:
    port, _ = relay
    report = _bench("--port", str(port), "--mode", "blast", "--receivers", "3", "--duration", "1", "--processes", "2",
                    "--drain", "30")
    assert report["processes"] == 2
    # Counts from both worker processes are merged: a lost half would show as ~0.5. A relay on a
    # loaded 2-core machine can still lag a few events behind the drain window, hence not == 1.0.
    assert report["delivery_ratio"] >= 0.99  # type: ignore[operator]
    assert report["expected"] == report["sent"] * 3  # type: ignore[operator]
    assert isinstance(report["delivered"], int) and report["delivered"] > 0


def test_unreachable_server_is_reported_not_raised() -> None:
    cmd = [
        sys.executable,
        "-m",
        "rallypoint.cli.bench",
        "--port",
        str(_free_port()),
        "--clients",
        "2",
        "--duration",
        "1",
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=90, check=False)
    assert done.returncode == 1
    assert "bench failed" in done.stderr


def test_fanout_against_rallypoint_over_tls_with_protobuf(server: ServerProcess, tmp_path: Path) -> None:
    bundle = client_bundle(server, "loadgen", tmp_path)
    report = _bench(
        "--port", str(server.ports["tls"]), "--tls", "--ca", str(bundle.ca), "--cert", str(bundle.cert),
        "--key", str(bundle.key), "--proto", "protobuf", "--clients", "4", "--rate", "2", "--duration", "2",
        "--server-pid", str(server.proc.pid if server.proc else 0),
    )
    assert report["delivery_ratio"] == 1.0, report
    assert report["expected"] == report["sent"] * 3  # type: ignore[operator]
    server_stats = report["server"]
    assert isinstance(server_stats, dict) and server_stats["cpu_percent_max"] >= 0
    assert server_stats["rss_mb_max"] > 0


@pytest.fixture
def unlimited_server(data_dir: Path) -> Iterator[ServerProcess]:
    """A server whose per-connection and per-address rate limits are off: blast is one address flooding."""
    proc = ServerProcess(data_dir, env={"RALLYPOINT_MAX_EVENTS_PER_S": "0", "RALLYPOINT_IP_EVENTS_PER_S": "0"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_fanout_against_rallypoint_with_compressed_streams(server: ServerProcess) -> None:
    report = _bench("--port", str(server.ports["cot"]), "--proto", "protobuf-deflate", "--clients", "4",
                    "--rate", "5", "--duration", "2")
    assert report["delivery_ratio"] == 1.0, report
    assert report["expected"] == report["sent"] * 3  # type: ignore[operator]


def test_blast_against_rallypoint_delivers_or_coalesces(unlimited_server: ServerProcess) -> None:
    server = unlimited_server
    report = _bench("--port", str(server.ports["cot"]), "--mode", "blast", "--receivers", "3", "--duration", "1",
                    "--drain", "30", "--server-pid", str(server.proc.pid if server.proc else 0))
    assert report["expected"] == report["sent"] * 3  # type: ignore[operator]
    assert isinstance(report["sent"], int) and report["sent"] > 1000
    # A receiver that falls behind gets the latest position per uid instead of every report; whatever
    # did not arrive must be accounted for by the server (coalesced or dropped by policy), never lost.
    missing = report["expected"] - report["delivered"]  # type: ignore[operator]
    accounted = metric_value(server, "rallypoint_outbox_coalesced_total") + metric_value(
        server, "rallypoint_outbox_dropped_total")
    assert missing <= accounted, (missing, accounted)


def test_fanout_against_the_demo_counts_only_its_own_uids(demo_server: ServerProcess) -> None:
    report = _bench("--port", str(demo_server.ports["cot"]), "--clients", "4", "--rate", "5", "--duration", "2")
    # The demo's traffic reaches the bench's receivers too; it is seen but not counted as delivered.
    assert report["delivery_ratio"] == 1.0, report
    assert report["delivered"] == report["expected"] == report["sent"] * 3  # type: ignore[operator]
    assert isinstance(report["other_events"], int) and report["other_events"] > 0, report
    assert isinstance(report["counted_uids"], str) and report["counted_uids"].startswith("RPBENCH-")
    assert report["connect_failures"] == 0 and report["limit"] is None


@pytest.mark.parametrize("with_metrics", [True, False], ids=["metrics", "shape"])
def test_connections_past_the_identity_limit_are_failures_with_the_limit_named(
    demo_server: ServerProcess, tmp_path: Path, with_metrics: bool
) -> None:
    server = demo_server
    bundle = client_bundle(server, "loadgen", tmp_path)
    extra = ["--metrics-url", f"http://127.0.0.1:{server.ports['http']}/metrics"] if with_metrics else []
    # One certificate for 12 clients: the server keeps max_connections_per_identity (10) and closes the rest.
    report = _bench(
        "--port", str(server.ports["tls"]), "--tls", "--ca", str(bundle.ca), "--cert", str(bundle.cert),
        "--key", str(bundle.key), "--clients", "12", "--rate", "2", "--duration", "2", *extra,
    )  # fmt: skip
    assert report["connected"] == 10, report
    assert report["connect_failures"] == 2, report
    reasons = report["failure_reasons"]
    assert isinstance(reasons, dict) and sum(reasons.values()) == 2, reasons
    limit = report["limit"]
    assert isinstance(limit, str) and "max_connections_per_identity" in limit, report
    if with_metrics:
        assert 'reason="identity_connections"' in limit
    else:
        assert "'loadgen'" in limit
    # The ten connections that stayed received everything meant for them.
    assert report["delivery_ratio"] == 1.0, report
    assert report["sent"] > 0 and report["expected"] == report["sent"] * 9  # type: ignore[operator]


def test_table_names_the_counted_uids_and_the_limit(demo_server: ServerProcess, tmp_path: Path) -> None:
    bundle = client_bundle(demo_server, "loadgen", tmp_path)
    cmd = [
        sys.executable, "-m", "rallypoint.cli.bench", "--host", "127.0.0.1", "--port", str(demo_server.ports["tls"]),
        "--tls", "--ca", str(bundle.ca), "--cert", str(bundle.cert), "--key", str(bundle.key), "--clients", "11",
        "--rate", "2", "--duration", "1",
    ]  # fmt: skip
    # Wide enough that no cell wraps, so each phrase can be found whole.
    done = subprocess.run(cmd, capture_output=True, text=True, env={**_env(), "COLUMNS": "400"}, timeout=90,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "only this run's own events (uids RPBENCH-" in text
    assert "failed 1, of which 1 closed by the server after connecting" in text
    assert "max_connections_per_identity" in text
