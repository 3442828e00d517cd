"""``rallypoint exercise run`` against a real server with what the twenty-unit drill leaves out: a GPX
track followed by its recorded times, a KML line walked at a speed, an ``enters`` trigger placing a
marker, an emergency raised then cancelled, a unit gone silent; the progress display and the one-line
summary; then the after-action report over that history. And a feed started by an inject: a
simulated ADS-B receiver whose tracks are marked as the exercise's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rallypoint.clock import SystemClock
from rallypoint.connectors.emit_play import OutputMode, OutputSpec, Player
from rallypoint.fusion.scenario import SCENARIOS, build_scenario
from rallypoint.fusion.scenario_sources import DEFAULT_SOURCES, SourceKind, simulate
from tests.integration.test_exercise_report import iso, stored
from tests.integration.test_exercise_run import history, run_exercise
from tests.support.accounts import PASSWORDS
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

# GPX with times: 39.000 at 0 s, 39.001 at 20 s, 39.002 at 40 s (5.6 m/s north), then it stays.
GPX = ('<?xml version="1.0"?><gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
       '<trkpt lat="39.000" lon="-120.0"><time>2026-03-01T08:00:00Z</time></trkpt>'
       '<trkpt lat="39.001" lon="-120.0"><time>2026-03-01T08:00:20Z</time></trkpt>'
       '<trkpt lat="39.002" lon="-120.0"><time>2026-03-01T08:00:40Z</time></trkpt>'
       "</trkseg></trk></gpx>")
# KML without times: north 111 m, then east 86 m, walked at 5 m/s (at its end after about 40 s).
KML = ('<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><LineString><coordinates>'
       "-120.001,39.000,0 -120.001,39.001,0 -120.000,39.001,0</coordinates></LineString></Placemark></Document></kml>")

SCENARIO = """[exercise]
id = "kinds"
duration = "01:00"

[[units]]
id = "walker"
callsign = "WALKER"
team = "Green"
rate_s = 2
motion = { kind = "track", file = "walk.gpx" }

[[units]]
id = "rover"
callsign = "ROVER"
team = "Green"
rate_s = 2
motion = { kind = "track", file = "line.kml", speed_mps = 5 }

[[units]]
id = "medic"
callsign = "MEDIC-SIM"
team = "Red"
role = "Medic"
rate_s = 2
motion = { kind = "static", at = { lat = 39.0, lon = -120.002 } }

# The circle's edge is at 39.00156 on the walker's line, passed at 31.2 s: its report at 32 s is the first inside.
[[injects]]
id = "arrived"
kind = "marker"
unit = "walker"
lat = 39.0016
lon = -120.0001
title = "Crossing"
text = "Walker at the crossing"
trigger = { kind = "enters", unit = "walker", area = { lat = 39.003, lon = -120.0, radius_m = 160 } }

[[injects]]
id = "casualty"
at = "00:10"
kind = "emergency"
unit = "medic"
emergency_type = "911 Alert"

[[injects]]
id = "casualty-off"
at = "00:20"
kind = "emergency_cancel"
unit = "medic"

[[injects]]
id = "hush"
at = "00:25"
kind = "silent"
unit = "medic"
duration = "00:10"
"""

EX = "kinds"


def uid(unit: str) -> str:
    return f"RP-EX-{EX}-{unit}"


def reports(rows: list[dict[str, Any]], unit: str) -> list[dict[str, Any]]:
    return sorted((r for r in rows if r["uid"] == uid(unit) and r["type"] == "a-f-G-U-C"), key=lambda r: r["time_ms"])


async def test_tracks_triggers_emergencies_silence_progress_and_the_report(server: ServerProcess, data_dir: Path,
                                                                           tmp_path: Path) -> None:
    (tmp_path / "walk.gpx").write_text(GPX)
    (tmp_path / "line.kml").write_text(KML)
    scenario = tmp_path / "kinds.toml"
    scenario.write_text(SCENARIO)
    since = int(datetime.now(UTC).timestamp() * 1000) - 1000
    # No --json and no --quiet: the operator's view, a progress display on stderr and one line on stdout.
    code, out, err = await run_exercise(str(scenario), "--server", f"tcp://127.0.0.1:{server.ports['cot']}",
                                        "--speed", "10")
    assert code == 0, err
    # 30 reports a unit (every 2 s for 60 s); the medic is silent from 25 s to 35 s: 5 of its reports.
    line = re.fullmatch(r"exercise kinds stopped at 01:00: (\d+) reports sent by 3 units, 4 injects; "
                        r"lag p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms\n", out)
    assert line is not None, out
    assert int(line.group(1)) == 3 * 30 - 5
    assert re.search(r"stopped .*01:00/01:00 x10\s+sent 85\s+injects 4/4\s+units 3", err), err

    rows = await wait_until(lambda: (got := history(server, exercise=EX))
                            and len([r for r in got if r["type"] == "a-f-G-U-C"]) >= 85 and got,
                            "every report stored", timeout=60)
    for row in rows:
        row["lat"], row["lon"] = row["position"]["lat"], row["position"]["lon"]
        assert row["exercise"] == EX and row["how"] == "m-s" and f'opex="e-{EX}"' in row["xml"], row["uid"]

    # The GPX track is followed by its recorded times: report k (taken at 2k s) is 2k/20 of the way per leg.
    walker = reports(rows, "walker")
    assert len(walker) == 30
    for k, r in enumerate(walker):
        assert r["lon"] == pytest.approx(-120.0, abs=1e-7)
        assert r["lat"] == pytest.approx(39.0 + 0.0001 * min(k, 20), abs=2e-7), k
    # The KML line is walked at 5 m/s along its two legs and stops at its end.
    rover = reports(rows, "rover")
    assert len(rover) == 30
    for r in rover:
        on_first = r["lon"] == pytest.approx(-120.001, abs=2e-7) and 39.0 - 2e-7 <= r["lat"] <= 39.001 + 2e-7
        on_second = r["lat"] == pytest.approx(39.001, abs=2e-7) and -120.001 - 2e-7 <= r["lon"] <= -120.0 + 2e-7
        assert on_first or on_second, (r["lat"], r["lon"])
    lats = [r["lat"] for r in rover]
    assert lats == sorted(lats) and (rover[-1]["lat"], rover[-1]["lon"]) == pytest.approx((39.001, -120.0), abs=2e-7)
    assert rover[1]["lat"] - rover[0]["lat"] == pytest.approx(10 / 111_000, rel=0.01)  # 10 m in 2 s

    # The enters trigger: a marker once the walker is reported inside, sent by the walker, marked as the inject.
    [marker] = [r for r in rows if r["uid"] == f"{uid('walker')}.arrived"]
    first_inside = next(r for r in walker if r["lat"] >= 39.00156)
    assert first_inside["lat"] == pytest.approx(39.0016, abs=2e-7)  # the report taken at 32 s
    assert marker["type"] == "a-u-G" and marker["time_ms"] >= first_inside["time_ms"]
    assert (marker["lat"], marker["lon"]) == pytest.approx((39.0016, -120.0001), abs=2e-7)
    assert 'inject="arrived" kind="marker"' in marker["xml"] and "Walker at the crossing" in marker["xml"]

    # The emergency is raised as ATAK raises it, then cancelled, both on the medic's connection and marked.
    alert_uid = f"{uid('medic')}-9-1-1"
    [raised] = [r for r in rows if r["uid"] == alert_uid and r["type"] == "b-a-o-tbl"]
    [cancelled] = [r for r in rows if r["uid"] == alert_uid and r["type"] == "b-a-o-can"]
    assert 'inject="casualty" kind="emergency"' in raised["xml"] and 'type="911 Alert"' in raised["xml"]
    assert 'inject="casualty-off" kind="emergency_cancel"' in cancelled["xml"] and 'cancel="true"' in cancelled["xml"]
    assert (raised["lat"], raised["lon"]) == pytest.approx((39.0, -120.002), abs=2e-7)
    assert raised["time_ms"] < cancelled["time_ms"]

    # Silence: the medic sends nothing for 10 s of exercise time, and its record says so.
    medic = reports(rows, "medic")
    assert len(medic) == 25
    gaps = sorted(b["time_ms"] - a["time_ms"] for a, b in itertools.pairwise(medic))
    assert gaps[-1] > 4 * gaps[len(gaps) // 2]  # one long gap: 12 s of exercise against the usual 2 s
    [record] = [r for r in rows if r["type"] == "t-x-rp-exercise"]
    assert 'inject="hush" kind="silent"' in record["xml"]

    # The report over that history: three reporting units (the marker is not one), every inject,
    # the silence seen as the medic's five lost reports, the raised alert counted for its team.
    until = int(datetime.now(UTC).timestamp() * 1000) + 60_000
    out_json = tmp_path / "kinds.json"
    command = [sys.executable, "-m", "rallypoint.cli.main", "exercise", "report", "--since", iso(since),
               "--until", iso(until), "--exercise", EX, "--data-dir", str(data_dir), "--out", str(out_json)]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = msgspec.json.decode(out_json.read_bytes())
    links = {link["uid"]: link for link in figures["links"]}
    assert set(links) == {uid("walker"), uid("rover"), uid("medic")}
    assert [links[uid(u)]["delivered"] for u in ("walker", "rover", "medic")] == [30, 30, 25]
    assert links[uid("medic")]["lost"] == 5 and links[uid("walker")]["lost"] == 0
    injects = {inj["id"]: inj for inj in figures["injects"]}
    assert {i: injects[i]["kind"] for i in injects} == {
        "arrived": "marker", "casualty": "emergency", "casualty-off": "emergency_cancel", "hush": "silent"}
    assert injects["casualty"]["at_ms"] == raised["time_ms"] and injects["casualty"]["awaits"] == "emergency"
    # A scripted cancel is part of the script, not somebody's answer.
    assert injects["casualty"]["response"] is None
    assert injects["arrived"]["where"] == pytest.approx([-120.0001, 39.0016], abs=2e-7)
    teams = {t["team"]: t for t in figures["teams"]}
    red, green = teams["Red"], teams["Green"]
    assert (red["emergencies"], red["simulated_units"], green["simulated_units"]) == (1, 1, 2)
    # The stored rows the report read are these, counted independently.
    rows_read = await asyncio.to_thread(stored, data_dir, since, until)
    assert figures["rows_read"] == len(rows_read) and json.dumps(figures["exercises_seen"]) == json.dumps([EX])


FEED_SCENARIO = """[exercise]
id = "air-drill"
duration = "00:12"

[[units]]
id = "tower"
callsign = "TOWER"
rate_s = 2
motion = {{ kind = "static", at = {{ lat = 39.0, lon = -120.0 }} }}

[[injects]]
id = "adsb-on"
at = "00:01"
kind = "feed_start"
feed = "sim-adsb"
url = "sbs+tcp://127.0.0.1:{port}"

[[injects]]
id = "adsb-off"
at = "00:10"
kind = "feed_stop"
feed = "sim-adsb"
"""


async def test_a_feed_an_inject_starts_gives_tracks_marked_as_the_exercise(api_server: ServerProcess,
                                                                            tmp_path: Path) -> None:
    # A simulated ADS-B receiver (the fusion work's simulator) the server's feed dials once the inject adds it.
    air = build_scenario(SCENARIOS["small"], 5, duration_s=6.0)
    adsb = tuple(s for s in DEFAULT_SOURCES if s.kind is SourceKind.ADSB)
    player = Player([OutputSpec(SourceKind.ADSB, OutputMode.LISTEN, "127.0.0.1", 0)], SystemClock())
    await player.open()
    [(_, port)] = player.listening_ports()
    scenario = tmp_path / "air.toml"
    scenario.write_text(FEED_SCENARIO.format(port=port))
    runner = asyncio.create_task(run_exercise(
        str(scenario), "--server", f"tcp://127.0.0.1:{api_server.ports['cot']}", "--api",
        f"http://127.0.0.1:{api_server.ports['http']}", "--user", "root", "--password-stdin", "--json",
        stdin=PASSWORDS["root"] + "\n"))
    # Plays once the server's feed has dialled in (it closes its port at the end).
    played = await player.play(simulate(air, adsb), speedup=1.0, wait_s=30.0)
    code, out, err = await runner
    assert code == 0, err
    assert all(counts.get("clients", 0) >= 1 for counts in played.outputs.values()), played.outputs
    done = {i["id"]: (i["ok"], i["note"]) for i in json.loads(out)["injects"]}
    assert done == {"adsb-on": (True, "feed sim-adsb started"), "adsb-off": (True, "feed sim-adsb stopped")}

    def tracks() -> list[dict[str, Any]]:
        return [r for r in history(api_server) if r["uid"].startswith("ICAO-")]

    said = await wait_until(tracks, "the feed's tracks stored", timeout=30)
    # Every track the exercise's feed gave is that exercise's traffic, kept out of live history.
    assert all(r["exercise"] == "air-drill" and 'opex="e-air-drill"' in r["xml"] for r in said)
    assert not [r for r in history(api_server, exercise="none") if r["uid"].startswith("ICAO-")]
