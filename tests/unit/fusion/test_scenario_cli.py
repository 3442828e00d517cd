"""``rallypoint simulate feeds``: recordings, playback to UDP, and clear refusals."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rallypoint.cli.main import app
from rallypoint.fusion.scenario import SCENARIOS, build_scenario
from rallypoint.fusion.scenario_record import read_recording
from rallypoint.model.track import Domain

runner = CliRunner()


def test_record_only_writes_the_scenario_and_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    result = runner.invoke(app, ["simulate", "feeds", "--scenario", "small", "--duration", "10", "--seed", "4",
                                 "--record", str(path)])
    assert result.exit_code == 0, result.output
    assert "recorded" in result.output
    with path.open("rb") as f:
        recording = read_recording(f)
    assert recording.scenario.name == "small" and recording.scenario.seed == 4
    assert recording.scenario.duration_s == 10.0 and recording.reports


def test_play_to_udp_records_the_wall_clock_start(tmp_path: Path) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    path = tmp_path / "played.jsonl"
    before = datetime.now(UTC) - timedelta(seconds=1)
    try:
        result = runner.invoke(app, ["simulate", "feeds", "--scenario", "small", "--duration", "12", "--speedup", "60",
                                     "--ais", f"127.0.0.1:{port}", "--record", str(path)])
        assert result.exit_code == 0, result.output
        sink.settimeout(5.0)
        assert sink.recv(4096).startswith(b"!AIVDM")
    finally:
        sink.close()
    with path.open("rb") as f:
        recording = read_recording(f)
    assert recording.scenario.start >= before and recording.scenario.speedup == 60.0
    assert '"ais:udp:127.0.0.1:' in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "atlantis", "--record", "x"], "unknown scenario 'atlantis'; choose one of: mixed"),
        (["--sbs", "nowhere"], "expected [listen:|connect:|udp:]HOST:PORT"),
        (["--speedup", "0", "--record", "x"], "--speedup and --duration must be positive"),
        ([], "nothing to do"),
    ],
)
def test_bad_options_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", "feeds", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_an_unwritable_record_file_is_reported(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "feeds", "--scenario", "small", "--record", str(tmp_path / "no" / "f")])
    assert result.exit_code == 2 and "cannot write" in result.output


def test_score_reads_the_servers_picture_and_reports_ospa() -> None:
    world = build_scenario(SCENARIOS["small"], 4, duration_s=3.0)
    vessel = next(t for t in world.targets if t.domain is Domain.SEA)
    lat, lon = world.frame.to_geodetic(float(vessel.east[0]), float(vessel.north[0]))
    now = datetime.now(UTC)
    stamp, stale = (f"{t:%Y-%m-%dT%H:%M:%S}Z" for t in (now, now + timedelta(hours=1)))
    track = (f'<event version="2.0" uid="MMSI-{vessel.identity.value}" type="a-n-S-X" how="m-f" time="{stamp}" '
             f'start="{stamp}" stale="{stale}"><point lat="{lat}" lon="{lon}" hae="0" ce="9" le="9"/></event>')
    server = socket.create_server(("127.0.0.1", 0))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))

    def picture() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(track.encode())
            while conn.recv(4096):
                pass

    thread = threading.Thread(target=picture, daemon=True)
    thread.start()
    try:
        result = runner.invoke(app, [
            "simulate", "feeds", "--scenario", "small", "--seed", "4", "--duration", "3", "--speedup", "3",
            "--ais", f"127.0.0.1:{sink.getsockname()[1]}", "--score", f"127.0.0.1:{server.getsockname()[1]}",
            "--score-every", "0.5", "--cutoff", "1000"])
    finally:
        server.close()
        sink.close()
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    samples = summary["ospa"]["samples"]
    assert samples and samples[-1]["tracks"] == 1 and samples[-1]["targets"] == 3
    # One of three vessels is on the map, close to its truth: the other two cost the cutoff.
    assert 1000 * (2 / 3) ** 0.5 <= summary["ospa"]["mean"] < 1000


def test_score_needs_something_to_play() -> None:
    result = runner.invoke(app, ["simulate", "feeds", "--score", "127.0.0.1:8087", "--record", "x"])
    assert result.exit_code == 2 and "--score needs" in result.output
