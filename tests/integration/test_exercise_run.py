"""``rallypoint exercise run`` against a real server: twenty units at 10x, injects, a degraded link,
marked traffic seen by PyTAK and filtered from history; TLS with a client certificate; protobuf.
"""

from __future__ import annotations

import asyncio
import configparser
import itertools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from tests.support.accounts import PASSWORDS
from tests.support.certs import client_bundle
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

DRILL = Path(__file__).parent.parent / "data" / "exercises" / "drill-20.toml"
MARK = "__rallypoint_exercise"


async def run_exercise(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """``rallypoint exercise run ARGS`` as an operator runs it: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rallypoint.cli.main", "exercise", "run", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), timeout=240)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class PyTakListener:
    """A PyTAK client on the plain CoT port collecting every event it receives, parsed with lxml."""

    def __init__(self) -> None:
        self.events: list[etree._Element] = []
        self._buf = b""
        self._changed = asyncio.Event()

    async def start(self, port: int) -> None:
        parser = configparser.ConfigParser()
        parser["t"] = {"COT_URL": f"tcp://127.0.0.1:{port}"}
        self.reader, self.writer = await pytak.protocol_factory(parser["t"])
        self._task = asyncio.create_task(self._read())
        # Announce ourselves so the server has a registered session before the units start.
        self.writer.write(pytak.gen_cot(lat=39.0, lon=-120.0, uid="pytak-observer", cot_type="a-f-G-U-C", stale=600))
        await self.writer.drain()
        await self.wait(lambda e: e.get("type") == "t-x-takp-v", 1)

    async def _read(self) -> None:
        while chunk := await self.reader.read(65536):
            self._buf += chunk
            while (end := self._buf.find(b"</event>")) >= 0:
                frame, self._buf = self._buf[: end + 8], self._buf[end + 8:]
                start = frame.find(b"<event")
                if start >= 0:
                    self.events.append(etree.fromstring(frame[start:]))
            self._changed.set()

    def matching(self, predicate: Any) -> list[etree._Element]:
        return [e for e in self.events if predicate(e)]

    async def wait(self, predicate: Any, count: int, timeout: float = 60.0) -> list[etree._Element]:
        """Wait (on arrivals, up to ``timeout``) until ``count`` events match."""
        async with asyncio.timeout(timeout):
            while len(found := self.matching(predicate)) < count:
                self._changed.clear()
                await self._changed.wait()
        return found

    async def close(self) -> None:
        self.writer.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def history(server: ServerProcess, **params: str) -> list[dict[str, Any]]:
    """Every stored event matching ``params`` (all pages), from the plain HTTP port on loopback."""
    rows: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "1000", **params}
    with httpx.Client(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=30) as client:
        while True:
            page = client.get("/api/history", params=query).json()
            rows += page["events"]
            if not page.get("next"):
                return rows
            query["cursor"] = page["next"]


def mark_of(event: etree._Element) -> etree._Element | None:
    return event.find(f"detail/{MARK}")


def unit_of(event: etree._Element) -> str | None:
    mark = mark_of(event)
    return mark.get("unit") if mark is not None else None


def is_report(event: etree._Element, unit: str) -> bool:
    return event.get("type") == "a-f-G-U-C" and event.get("uid") == f"RP-EX-drill-20-{unit}"


async def test_twenty_units_three_injects_and_a_degraded_link_at_ten_times(server: ServerProcess) -> None:
    listener = PyTakListener()
    await listener.start(server.ports["cot"])
    try:
        code, out, err = await run_exercise(str(DRILL), "--server", f"tcp://127.0.0.1:{server.ports['cot']}",
                                            "--speed", "10", "--json")
        assert code == 0, err
        summary = json.loads(out)
        links = summary["links"]
        # The script: 20 units x 48 reports (every 5 s for 240 s); CYAN-1 (a1) from 90 s to 150 s keeps
        # 1 report in 2 (12 taken, 6 kept) and sends those 2 s of exercise time late.
        assert summary["units"] == 20 and summary["state"] == "stopped" and summary["send_errors"] == 0
        assert links["a1"] == {"scheduled": 48, "sent": 42, "delayed": 6, "thinned": 6, "cut": 0, "silenced": 0}
        assert all(links[u]["sent"] == 48 for u in links if u != "a1")
        assert summary["sent"] == 19 * 48 + 42
        assert [(i["id"], i["kind"], i["cause"], i["clock_s"], i["ok"]) for i in summary["injects"]] == [
            ("casualty", "emergency", "time", 60.0, True), ("cyan1-link", "link", "time", 90.0, True),
            ("sitrep", "chat", "time", 120.0, True)]

        # PyTAK sees every unit, and every simulated event is marked.
        a1 = await listener.wait(lambda e: is_report(e, "a1"), 42)
        simulated = listener.matching(lambda e: str(e.get("uid", "")).startswith("RP-EX-drill-20"))
        assert {unit_of(e) for e in simulated} == {f"{t}{n}" for t in "abcd" for n in range(1, 6)}
        for event in simulated:
            mark = mark_of(event)
            assert event.get("opex") == "e-drill-20" and event.get("how") == "m-s"
            assert mark is not None and mark.get("id") == "drill-20"
        # The server repeats an active emergency until it is cancelled: one uid, however many times.
        alerts = listener.matching(lambda e: e.get("type") == "b-a-o-tbl")
        assert alerts and {a.get("uid") for a in alerts} == {"RP-EX-drill-20-b3-9-1-1"}
        alert = alerts[0]
        assert alert.get("uid") == "RP-EX-drill-20-b3-9-1-1" and alert.findtext("detail/emergency") == "RED-3"
        assert (mark_of(alert).get("inject"), mark_of(alert).get("kind")) == ("casualty", "emergency")
        [chat] = listener.matching(lambda e: e.get("type") == "b-t-f" and unit_of(e) == "a1")
        assert chat.findtext("detail/remarks") == "All stations: send SITREP"
        assert mark_of(chat).get("inject") == "sitrep"
        # The inject record is stored but delivered to nobody.
        assert listener.matching(lambda e: e.get("type") == "t-x-rp-exercise") == []

        # Thinned: in the degraded minute a1's reports come 10 s of exercise apart (1 s at 10x), else 5 s.
        times = [_ms(e.get("time")) for e in a1]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) == 42 and sorted(times) == times
        degraded = gaps[18:23]  # between the kept reports taken at 90, 100, ... 140 s
        assert all(900 <= gap <= 1100 for gap in degraded), gaps
        # Late: a delayed report (taken at 90 s, sent at 92 s) arrives after other units' later reports.
        order = listener.events.index(a1[18])
        overtaken = [e for e in listener.events[:order]
                     if e.get("type") == "a-f-G-U-C" and unit_of(e) not in (None, "a1")
                     and _ms(e.get("time")) > times[18]]
        assert overtaken, "a report sent 2 s late was not overtaken by any later report"
    finally:
        await listener.close()

    # History keeps the exercise apart: filtered in, filtered out, and the inject records.
    exercise = history(server, exercise="drill-20")
    live = history(server, exercise="none")
    assert len([r for r in exercise if r["type"] == "a-f-G-U-C"]) == 19 * 48 + 42
    assert all(r["exercise"] == "drill-20" for r in exercise)
    assert not any(r["uid"].startswith("RP-EX-") for r in live)
    assert any(r["uid"] == "pytak-observer" for r in live)
    [record] = [r for r in exercise if r["type"] == "t-x-rp-exercise"]
    assert 'inject="cyan1-link"' in record["xml"] and 'kind="link"' in record["xml"]


SMALL = """[exercise]
id = "{id}"
duration = 20

[[units]]
id = "solo"
callsign = "SOLO"
rate_s = 1
motion = {{ kind = "random_walk", speed_mps = 3, area = {{ lat = 39.2, lon = -120.1, radius_m = 300 }} }}

[[injects]]
id = "blackout"
at = 5
kind = "link"
unit = "solo"
cut = 5
"""


@pytest.mark.parametrize("mode", ["tls", "protobuf"])
async def test_tls_with_a_client_certificate_and_protobuf_units(server: ServerProcess, tmp_path: Path,
                                                                mode: str) -> None:
    scenario = tmp_path / "small.toml"
    exercise_id = f"small-{mode}"
    scenario.write_text(SMALL.format(id=exercise_id))
    if mode == "tls":
        bundle = client_bundle(server, "exercise-runner", tmp_path)
        args = ["--server", f"tls://127.0.0.1:{server.ports['tls']}", "--ca", str(bundle.ca),
                "--cert", str(bundle.cert), "--key", str(bundle.key)]
    else:
        args = ["--server", f"tcp://127.0.0.1:{server.ports['cot']}", "--protocol", "protobuf"]
    code, out, err = await run_exercise(str(scenario), *args, "--speed", "10", "--json")
    assert code == 0, err
    summary = json.loads(out)
    # 20 reports a second apart; the link is cut from 5 s to 10 s: those 5 are lost.
    assert summary["links"]["solo"]["cut"] == 5 and summary["sent"] == 15 and summary["send_errors"] == 0
    stored = sorted((r for r in history(server, exercise=exercise_id) if r["type"] == "a-f-G-U-C"),
                    key=lambda r: r["time_ms"])
    assert len(stored) == 15
    for row in stored:
        assert row["uid"] == f"RP-EX-{exercise_id}-solo" and row["how"] == "m-s"
        assert f'opex="e-{exercise_id}"' in row["xml"] and f'<{MARK} id="{exercise_id}" unit="solo"/>' in row["xml"]
    gaps = sorted(b["time_ms"] - a["time_ms"] for a, b in itertools.pairwise(stored))
    assert 500 <= gaps[-1] <= 700  # the cut: 6 s of exercise time (0.6 s at 10x) between two reports


async def test_a_bad_scenario_exits_2_with_its_lines(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text(SMALL.format(id="bad") + '\n[[injects]]\nid = "x"\nat = "00:30"\nkind = "silent"\n'
                                                 'unit = "ghost"\n')
    lines = scenario.read_text().splitlines()
    at, unit = lines.index('at = "00:30"') + 1, lines.index('unit = "ghost"') + 1
    code, _, err = await run_exercise(str(scenario), "--server", "tcp://127.0.0.1:9")
    assert code == 2
    assert f"{scenario}:{at}: time travel: at 00:30 is after the exercise ends (00:20)" in err
    assert f"{scenario}:{unit}: inject 'x' names unit 'ghost', which is not in [[units]]" in err


async def test_an_unreachable_server_exits_1(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SMALL.format(id="nowhere"))
    code, _, err = await run_exercise(str(scenario), "--server", "tcp://127.0.0.1:9")
    assert code == 1 and "cannot connect every unit to 127.0.0.1:9" in err


def _ms(text: str | None) -> int:
    from datetime import datetime

    assert text is not None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


CONTROLLED = """[exercise]
id = "steered"
duration = "10:00"

[missions]
allow = ["Ridge Ops"]

[[units]]
id = "u1"
callsign = "UNIT-1"
rate_s = 2
motion = { kind = "static", at = { lat = 39.3, lon = -120.2 } }

[[units]]
id = "u2"
callsign = "UNIT-2"
rate_s = 2
motion = { kind = "loiter", center = { lat = 39.3, lon = -120.2 }, radius_m = 100, speed_mps = 2 }

[[injects]]
id = "patrol"
at = "00:04"
kind = "task"
text = "Patrol the ridge"
to_unit = "u1"

[[injects]]
id = "lz"
at = "00:04"
kind = "designation"
title = "LZ North"
category = "landing_site"
lat = 39.31
lon = -120.21

[[injects]]
id = "radar-on"
at = "00:02"
kind = "feed_start"
feed = "radar"
url = "sbs+tcp://127.0.0.1:9"

[[injects]]
id = "radar-off"
at = "00:06"
kind = "feed_stop"
feed = "radar"

[[injects]]
id = "on-ack"
kind = "chat"
unit = "u1"
text = "Moving to the ridge"
trigger = { kind = "task_acknowledged", inject = "patrol" }

[[injects]]
id = "weather"
kind = "chat"
unit = "u2"
text = "Storm front: return to base"
"""


async def control_cli(base: str, *args: str) -> str:
    """``rallypoint exercise ARGS`` as the controller (root) types it; its standard output."""
    env = {**os.environ, "RALLYPOINT_URL": base, "RALLYPOINT_USER": "root", "RALLYPOINT_PASSWORD": PASSWORDS["root"]}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rallypoint.cli.main", "exercise", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def test_live_control_api_injects_and_an_acknowledged_task(api_server: ServerProcess, tmp_path: Path) -> None:
    scenario = tmp_path / "steered.toml"
    scenario.write_text(CONTROLLED)
    base = f"http://127.0.0.1:{api_server.ports['http']}"
    runner = asyncio.create_task(run_exercise(
        str(scenario), "--server", f"tcp://127.0.0.1:{api_server.ports['cot']}", "--speed", "4", "--start", "paused",
        "--api", base, "--user", "root", "--password-stdin", "--json", stdin=PASSWORDS["root"] + "\n"))
    with httpx.Client(base_url=base, timeout=40) as http:
        login = await asyncio.to_thread(http.post, "/api/auth/token", auth=("root", PASSWORDS["root"]))
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

        def exercise() -> dict[str, Any]:
            answer = http.get("/api/exercises/steered")
            return answer.json() if answer.status_code == 200 else {}

        def control(action: str, **extra: Any) -> None:
            answer = http.post("/api/exercises/steered/control", json={"action": action, **extra})
            assert answer.status_code == 200, answer.text

        def in_state(wanted: str, past_s: float = 0.0) -> dict[str, Any] | None:
            found = exercise()
            return found if found.get("state") == wanted and found["clock_s"] >= past_s else None

        seen: list[dict[str, Any]] = []

        def settled_pause() -> tuple[dict[str, Any], dict[str, Any]] | None:
            """Two progress reports of the paused runner: the last two of three paused snapshots in a row.

            The first paused snapshot may be the server's acceptance of the command (the clock the
            runner last reported); any later one is the runner's own report.
            """
            now = exercise()
            if not seen or now["updated_at"] != seen[-1]["updated_at"]:
                seen.append(now)
            run: list[dict[str, Any]] = []
            for snapshot in seen:
                run = [*run, snapshot] if snapshot["state"] == "paused" else []
            return (run[-2], run[-1]) if len(run) >= 3 else None

        def the_task() -> list[dict[str, Any]]:
            return [t for t in http.get("/api/tasks").json() if t["what"] == "Patrol the ridge"]

        registered = await wait_until(exercise, "the runner registers the exercise", timeout=60)
        assert (registered["state"], registered["units"], registered["controller"]) == ("ready", 2, "root")
        assert registered["injects"] == ["patrol", "lz", "radar-on", "radar-off", "on-ack", "weather"]
        # The live missions the scenario lets its traffic join, and no other (docs/exercises.md, "Live missions").
        assert registered["missions"] == ["Ridge Ops"]
        await asyncio.to_thread(control, "start")
        await wait_until(lambda: in_state("running", 5.0), "the clock runs past the task inject", timeout=60)
        [task] = await wait_until(the_task, "the task inject assigned a task", timeout=30)
        assert task["assignee"]["uid"] == "RP-EX-steered-u1"
        answer = await asyncio.to_thread(http.post, f"/api/tasks/{task['id']}/status",
                                         json={"state": "acknowledged", "note": ""})
        assert answer.status_code == 200, answer.text
        # The controller pauses from the command line; the runner's clock and reports stand still.
        paused_cli = await control_cli(base, "pause", "steered")
        assert paused_cli.startswith("pause queued for steered as command "), paused_cli
        first, paused = await wait_until(settled_pause, "two progress reports of the paused runner", timeout=30,
                                         interval=0.2)
        assert (first["clock_s"], first["sent"]) == (paused["clock_s"], paused["sent"])
        # Inject now, from the command line, while paused: carried out at once, the clock still stopped.
        assert (await control_cli(base, "inject", "steered", "weather")).startswith("inject queued")
        injected = await wait_until(lambda: (e := exercise())["injects_done"] > paused["injects_done"] and e,
                                    "the runner carries out the manual inject", timeout=30)
        assert (injected["state"], injected["clock_s"]) == ("paused", paused["clock_s"])
        await asyncio.to_thread(control, "speed", speed=10)
        await asyncio.to_thread(control, "resume")
        await wait_until(lambda: in_state("running", paused["clock_s"] + 1), "the runner runs on", timeout=60)
        await asyncio.to_thread(control, "stop")
        code, out, err = await asyncio.wait_for(runner, timeout=120)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["registered"] and summary["state"] == "stopped" and summary["speed"] == 10
    assert paused["clock_s"] < summary["clock_s"] < 600
    done = {i["id"]: i for i in summary["injects"]}
    assert set(done) == {"patrol", "lz", "radar-on", "radar-off", "on-ack", "weather"}
    assert (done["radar-on"]["note"], done["radar-off"]["note"]) == ("feed radar started", "feed radar stopped")
    assert done["radar-on"]["ok"] and done["radar-off"]["ok"]
    assert done["patrol"]["ok"] and done["patrol"]["note"] == f"task {task['id']} assigned"
    assert done["lz"]["ok"] and done["lz"]["note"].startswith("designation "), done["lz"]["note"]
    assert (done["on-ack"]["cause"], done["weather"]["cause"]) == ("trigger", "manual")
    # Every inject is in history, marked with its id: its own event, or the runner's record of it.
    stored = history(api_server, exercise="steered")
    marked = {row["xml"].split('inject="')[1].split('"')[0] for row in stored if 'inject="' in row["xml"]}
    assert marked == {"patrol", "lz", "radar-on", "radar-off", "on-ack", "weather"}
