"""``rallypoint exercise report`` on history a real server stored from marked exercise traffic.

Raw CoT clients play the simulated units of exercise ``drill-it`` (one with a degraded link: its
reports arrive a minute old and three are missing), a live unit and a unit of another exercise; the
injects are an emergency (answered by a live cancel), another acknowledged by a web user, a task and
a designation (answered over the native API) and a chat. The report's figures are then checked
against figures computed here, with plain Python, from the rows and audit entries read straight from
the stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from statistics import median_low
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx
import msgspec
import pytest

from rallypoint.errors import StorageError
from rallypoint.security.audit import AuditEntry
from rallypoint.storage.base import HistoryQuery, StoredEvent
from rallypoint.storage.factory import open_event_store
from tests.support.accounts import audit_entries, run_cli
from tests.support.poll import wait_until_sync
from tests.support.server import ServerProcess

EXERCISE = "drill-it"
PASSWORDS = {"alice": "alice passphrase 1", "carol": "carol passphrase 333"}
ACCOUNTS = {"alice": ("member", ["__ANON__"]), "carol": ("approver", ["__ANON__"])}
PAYLOAD = "<script>alert(1)</script>"
LATE_MS = 2000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event(uid: str, t: int, *, type: str = "a-f-G-U-C", lat: float = 39.1, lon: float = -120.0, callsign: str = "",
          team: str = "", exercise: str | None = EXERCISE, unit: str = "", inject: str = "", kind: str = "",
          ref: str = "", extra: str = "") -> bytes:
    """A CoT event of time ``t`` (ms), with the exercise marker when ``exercise`` is given."""
    detail = extra
    if callsign:
        detail += f"<contact callsign={quoteattr(callsign)}/>"
    if team:
        detail += f'<__group name="{team}" role="Team Member"/>'
    opex = ""
    if exercise is not None:
        attrs = {"id": exercise, "unit": unit, "inject": inject, "kind": kind, "ref": ref}
        detail += "<__rallypoint_exercise " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items() if v) + "/>"
        opex = f' opex="e-{exercise}"'
    how = "m-s" if exercise is not None else "m-g"
    return (f'<event version="2.0" uid="{uid}" type="{type}" how="{how}" time="{iso(t)}" start="{iso(t)}"'
            f' stale="{iso(t + 600_000)}"{opex}><point lat="{lat}" lon="{lon}" hae="10.0" ce="5.0" le="5.0"/>'
            f"<detail>{detail}</detail></event>").encode()


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    for name, (role, groups) in ACCOUNTS.items():
        args = [a for g in groups for a in ("--group", g)]
        run_cli(data_dir, "user", "add", name, *args, "--role", role, "--password-stdin", stdin=PASSWORDS[name] + "\n")
    with ServerProcess(data_dir) as proc:
        yield proc


def api(server: ServerProcess, name: str) -> httpx.Client:
    http = httpx.Client(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=30)
    answer = http.post("/api/auth/token", auth=(name, PASSWORDS[name]))
    assert answer.status_code == 200, answer.text
    http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return http


def stored(data_dir: Path, since: int, until: int) -> list[StoredEvent]:
    async def go() -> list[StoredEvent]:
        store = open_event_store("sqlite://", data_dir)
        try:
            return await store.query(HistoryQuery(since_ms=since, until_ms=until, limit=100_000))
        finally:
            # Closing runs PRAGMA optimize, which the running server's writes may refuse; the rows are read.
            with contextlib.suppress(StorageError):
                await store.close()

    return asyncio.run(go())


def play(server: ServerProcess, base: int) -> tuple[int, dict[str, Any]]:
    """Send the exercise; returns how many rows the store must end up holding, and what the API made."""
    sim = socket.create_connection(("127.0.0.1", server.ports["cot"]))
    live = socket.create_connection(("127.0.0.1", server.ports["cot"]))
    other = socket.create_connection(("127.0.0.1", server.ports["cot"]))
    alice, carol = api(server, "alice"), api(server, "carol")
    sent = 0
    try:
        for n in range(1, 7):
            team = "Cyan" if n <= 3 else "Red"
            # sim-2's link is degraded: its reports are a minute old when they arrive, three are lost.
            start = base - 60_000 if n == 2 else base
            for i in range(12):
                if n == 2 and i in (4, 5, 6):
                    continue
                sim.sendall(event(f"sim-{n}", start + i * 1000, lat=39.1 + n * 0.01 + i * 0.0005, lon=-120.0,
                                  callsign=f"{team.upper()}-{n}", team=team, unit=f"u{n}"))
                sent += 1
        for i in range(5):
            live.sendall(event("ANDROID-live", base + i * 2000, lat=39.2, lon=-120.0 + i * 0.001, callsign="MEDIC",
                               team="Cyan", exercise=None))
            other.sendall(event("sim-o", base + i * 1000, exercise="other-ex", callsign="OTHER", team="Red", unit="o1"))
            sent += 2
        # Inject 1: a casualty (emergency) from sim-4; a live cancel answers it.
        sim.sendall(event("sim-4-9-1-1", base + 3000, type="b-a-o-tbl", callsign=PAYLOAD, unit="u4", inject="casualty",
                          kind="emergency", extra='<link uid="sim-4" relation="p-p"/><emergency type="911 Alert"/>'))
        # Inject 2: a task, created over the API, recorded by a marker naming it.
        task = alice.post("/api/tasks", json={"what": "Check the ford", "assignee": {"callsign": "RED-5"}})
        assert task.status_code == 201, task.text
        sim.sendall(event("x-task-1", base + 4000, type="t-x-rp-exercise", inject="task-1", kind="task",
                          ref=task.json()["id"]))
        # Inject 3: a designation, proposed over the API, recorded by a marker that names nothing.
        dz = alice.post("/api/designations", json={
            "title": "DZ north", "category": "landing_site", "affiliation": "friend", "priority": 2,
            "notes": PAYLOAD, "point": {"lat": 39.15, "lon": -120.01}})
        assert dz.status_code == 201, dz.text
        sim.sendall(event("x-dz", base + 5000, type="t-x-rp-exercise", inject="dz", kind="designation"))
        # Inject 4: a chat (no response is measured).
        sim.sendall(event("sitrep-1", base + 6000, type="b-t-f", inject=PAYLOAD, kind="chat", callsign="EXCON"))
        sent += 4
        live.sendall(event("sim-4-9-1-1", base + 9000, type="b-a-o-can", callsign="MEDIC", exercise=None))
        sent += 1
        # Inject 5: a second casualty (stamped before now, so the acknowledgement comes after it),
        # acknowledged by a web user: the audit log holds the answer.
        sim.sendall(event("sim-5-9-1-1", base - 10_000, type="b-a-o-tbl", callsign="RED-5-Alert", unit="u5",
                          inject="casualty-2", kind="emergency",
                          extra='<link uid="sim-5" relation="p-p"/><emergency type="911 Alert"/>'))
        sent += 1
        wait_until_sync(lambda: any(e["uid"] == "sim-5-9-1-1" for e in alice.get("/api/emergencies").json()),
                        "the second casualty is active", timeout=30)
        acked = alice.post("/api/emergencies/sim-5-9-1-1/ack")
        assert acked.status_code == 200, acked.text
        ack = alice.post(f"/api/tasks/{task.json()['id']}/status", json={"state": "acknowledged"})
        assert ack.status_code == 200, ack.text
        approved = carol.post(f"/api/designations/{dz.json()['id']}/approve", json={})
        assert approved.status_code == 200, approved.text
    finally:
        for conn in (sim, live, other):
            conn.close()
        alice.close()
        carol.close()
    return sent, {"task": task.json()["id"], "designation": dz.json()["id"]}


def report(data_dir: Path, since: int, until: int, out: Path,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "exercise", "report", "--since", iso(since),
                           "--until", iso(until), "--exercise", EXERCISE, "--data-dir", str(data_dir),
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def expected_links(rows: list[StoredEvent]) -> dict[str, dict[str, Any]]:
    """Delivery per link, computed plainly from the raw rows (definitions of docs/exercises.md)."""
    links: dict[str, dict[str, Any]] = {}
    for r in rows:
        unit_report = r.type.startswith("a-") and r.how != "h-g-i-g-o"  # not a marker placed by hand
        if not unit_report or r.exercise not in (None, EXERCISE) or (r.lat == 0 and r.lon == 0):
            continue
        link = links.setdefault(r.uid, {"times": [], "late": 0, "points": [], "team": r.team})
        link["times"].append(r.time)
        link["points"].append((r.lon, r.lat))
        link["late"] += (r.received - r.time) > LATE_MS
    out = {}
    for uid, link in links.items():
        times = link["times"]
        gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
        interval = median_low(gaps) if len(times) >= 3 and gaps else None
        lost = 0 if interval is None else sum(
            max(0, round((b - a) / interval) - 1) for a, b in itertools.pairwise(times)
            if b - a > 1.5 * interval)
        pts = link["points"]
        distance = sum(haversine(*a, *b) for a, b in itertools.pairwise(pts))
        out[uid] = {"delivered": len(times), "late": link["late"], "lost": lost, "interval_ms": interval,
                    "distance": distance, "team": link["team"]}
    return out


class Cells(HTMLParser):
    """The text of every table row of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag == "td" and self.rows:
            self.rows[-1].append("")

    def handle_data(self, data: str) -> None:
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def test_report_figures_equal_those_computed_from_the_raw_history(server: ServerProcess, data_dir: Path,
                                                                   tmp_path: Path) -> None:
    base = int(datetime.now(UTC).timestamp() * 1000) + 2000
    since, until = base - 120_000, base + 600_000
    sent, made = play(server, base)
    # Every event sent is stored (plus the server's own task and designation events).
    ours = ("sim-", "ANDROID-live", "x-", "sitrep-")

    def complete() -> bool:
        got = stored(data_dir, since, until)
        return (sum(r.uid.startswith(ours) for r in got) >= sent
                and any(b'state="acknowledged"' in r.xml for r in got)
                and any(b'state="approved"' in r.xml for r in got))

    wait_until_sync(complete, "the exercise stored", timeout=60)

    done = report(data_dir, since, until, tmp_path / "report.json")
    assert done.returncode == 0, done.stderr
    figures = msgspec.json.decode((tmp_path / "report.json").read_bytes())
    rows = stored(data_dir, since, until)  # everything the report read
    check_delivery(figures, rows)
    check_injects(figures, rows, audit_entries(data_dir), made)
    assert figures["rows_other_exercises"] == sum(r.exercise == "other-ex" for r in rows) == 5
    assert figures["rows_read"] == len(rows)

    html_done = report(data_dir, since, until, tmp_path / "report.html")
    assert html_done.returncode == 0, html_done.stderr
    check_html((tmp_path / "report.html").read_text(), figures)


def check_delivery(figures: dict[str, Any], rows: list[StoredEvent]) -> None:
    expected = expected_links(rows)
    links = {link["uid"]: link for link in figures["links"]}
    assert set(links) == set(expected) == {*(f"sim-{n}" for n in range(1, 7)), "ANDROID-live"}
    for uid, want in expected.items():
        got = links[uid]
        assert (got["delivered"], got["late"], got["lost"], got["interval_ms"], got["sent"]) == (
            want["delivered"], want["late"], want["lost"], want["interval_ms"], want["delivered"] + want["lost"]), uid
    # What was sent shows through: sim-2 lost three reports, all its reports are late.
    assert (links["sim-2"]["lost"], links["sim-2"]["late"], links["sim-2"]["delivered"]) == (3, 9, 9)
    assert links["sim-1"]["lost"] == 0 and links["sim-2"]["simulated"] and not links["ANDROID-live"]["simulated"]
    teams = {t["team"]: t for t in figures["teams"]}
    for team in ("Cyan", "Red"):
        members = [w for w in expected.values() if w["team"] == team]
        assert teams[team]["reports"] == sum(w["delivered"] for w in members)
        assert teams[team]["distance_m"] == pytest.approx(sum(w["distance"] for w in members), rel=1e-5)
    assert (teams["Cyan"]["simulated_units"], teams["Cyan"]["live_units"]) == (3, 1)
    assert (teams["Red"]["emergencies"], teams["Red"]["tasks"]) == (2, 1)


def check_injects(figures: dict[str, Any], rows: list[StoredEvent], audit: list[AuditEntry],
                  made: dict[str, Any]) -> None:
    injects = {inj["id"]: inj for inj in figures["injects"]}
    assert set(injects) == {"casualty", "casualty-2", "task-1", "dz", PAYLOAD}
    cancel = min(r.time for r in rows if r.type == "b-a-o-can" and r.uid == "sim-4-9-1-1")
    raised = min(r.time for r in rows if r.type == "b-a-o-tbl" and r.uid == "sim-4-9-1-1")
    cas = injects["casualty"]
    assert (cas["at_ms"], cas["response"]["at_ms"], cas["response"]["what"]) == (raised, cancel, "emergency cancelled")
    acked = injects["casualty-2"]
    ack = next(e for e in audit if e.action == "emergency.ack" and e.target == "sim-5-9-1-1")
    assert (acked["at_ms"], acked["response"]["at_ms"]) == (min(r.time for r in rows if r.uid == "sim-5-9-1-1"),
                                                            ack.ts_ms)
    assert (acked["response"]["what"], acked["response"]["by"]) == ("emergency acknowledged", "alice")
    assert acked["latency_ms"] == ack.ts_ms - acked["at_ms"] and injects[PAYLOAD]["latency_ms"] is None
    task_rows = [r for r in rows if r.uid == f"rp-task-{made['task']}"]
    assigned = min(r.time for r in task_rows if b'state="assigned"' in r.xml)
    acked = min(r.time for r in task_rows if b'state="acknowledged"' in r.xml)
    task = injects["task-1"]
    assert (task["target"], task["at_ms"], task["response"]["at_ms"]) == (made["task"], assigned, acked)
    # Each state counts from its first record: the audit entry or the designation's CoT, whichever is first.
    ident = f'id="{made["designation"]}"'.encode()

    def first(action: str, state: bytes) -> int:
        logged = next(e.ts_ms for e in audit if e.action == action and e.target == made["designation"])
        return min(logged, min(r.time for r in rows if ident in r.xml and b'state="' + state + b'"' in r.xml))

    dz = injects["dz"]
    assert (dz["target"], dz["at_ms"]) == (made["designation"], first("designation.propose", b"proposed"))
    assert dz["response"]["at_ms"] == first("designation.approve", b"approved")
    assert dz["response"]["what"] == "designation approved"
    assert injects[PAYLOAD]["awaits"] == "" and injects[PAYLOAD]["response"] is None


def check_html(html: str, figures: dict[str, Any]) -> None:
    page = Cells()
    page.feed(html)
    assert "script" not in page.tags and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "svg" in page.tags
    # Time to respond, shown per inject: its first response's time less the inject's.
    by_inject = {row[0]: row for row in page.rows if len(row) == 10}
    answered = [inj for inj in figures["injects"] if inj["response"]]
    assert {inj["id"] for inj in answered} == {"casualty", "casualty-2", "task-1", "dz"}
    for inj in answered:
        assert by_inject[inj["id"]][9] == f"{(inj['response']['at_ms'] - inj['at_ms']) / 1000:.1f} s", inj["id"]
    by_uid = {row[1]: row for row in page.rows if len(row) == 12}
    for link in figures["links"]:
        cells = by_uid[link["uid"]]
        assert [int(c) for c in cells[5:9]] == [link["delivered"] + link["lost"], link["delivered"], link["late"],
                                                link["lost"]]


def test_pdf_when_chromium_is_installed(server: ServerProcess, data_dir: Path, tmp_path: Path) -> None:
    base = int(datetime.now(UTC).timestamp() * 1000)
    with socket.create_connection(("127.0.0.1", server.ports["cot"])) as conn:
        for i in range(3):
            conn.sendall(event("sim-1", base + i * 1000, callsign="CYAN-1", team="Cyan", unit="u1"))
    wait_until_sync(lambda: len(stored(data_dir, base - 1000, base + 60_000)) >= 3, "stored", timeout=60)
    out = tmp_path / "report.pdf"
    # Without a renderer: exit 2 and a plain reason, no file.
    missing = report(data_dir, base - 1000, base + 60_000, out, env={"RALLYPOINT_CHROMIUM": str(tmp_path / "none")})
    assert missing.returncode == 2 and "no PDF renderer is installed" in missing.stderr and not out.exists()
    if shutil.which("chromium") is None:
        pytest.skip("no Chromium on this machine")
    done = report(data_dir, base - 1000, base + 60_000, out)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"%PDF-")


DRILL = Path(__file__).resolve().parent.parent / "data" / "exercises" / "drill-20.toml"


def test_the_twenty_unit_drill_run_at_ten_times(server: ServerProcess, data_dir: Path, tmp_path: Path) -> None:
    since = int(datetime.now(UTC).timestamp() * 1000) - 1000
    run = subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "exercise", "run", str(DRILL), "--server",
                          f"tcp://127.0.0.1:{server.ports['cot']}", "--speed", "10", "--json", "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    summary = msgspec.json.decode(run.stdout)
    until = int(datetime.now(UTC).timestamp() * 1000) + 60_000
    wait_until_sync(lambda: sum(r.exercise == "drill-20" and r.type == "a-f-G-U-C"
                                for r in stored(data_dir, since, until)) >= summary["sent"],
                    "every report stored", timeout=60)
    out = tmp_path / "drill.json"
    # At 10x the scripted 2 s delay is 0.2 s of wall time: late means more than 0.1 s here.
    done = subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "exercise", "report", "--since", iso(since),
                           "--until", iso(until), "--exercise", "drill-20", "--late-after", "0.1",
                           "--data-dir", str(data_dir), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = msgspec.json.decode(out.read_bytes())
    rows = stored(data_dir, since, until)
    links = {link["unit"]: link for link in figures["links"]}
    assert set(links) == {f"{t}{n}" for t in "abcd" for n in range(1, 6)}
    # Independently: reports stored per unit, and the runner's own count of what it sent.
    for unit, link in links.items():
        mine = [r for r in rows if r.uid == f"RP-EX-drill-20-{unit}" and r.type == "a-f-G-U-C"]
        assert link["delivered"] == len(mine) == summary["links"][unit]["sent"]
        assert link["late"] == sum(r.received - r.time > 100 for r in mine)
    # CYAN-1's degraded minute: 1 report in 2 kept (6 lost from its rhythm), the kept ones 0.2 s late.
    assert links["a1"]["lost"] == summary["links"]["a1"]["thinned"] == 6
    assert links["a1"]["late"] >= summary["links"]["a1"]["delayed"] == 6
    assert all(link["lost"] == 0 for unit, link in links.items() if unit != "a1")
    injects = {inj["id"]: inj for inj in figures["injects"]}
    assert set(injects) == {"casualty", "cyan1-link", "sitrep"}
    alert = min(r.time for r in rows if r.type == "b-a-o-tbl")
    assert (injects["casualty"]["awaits"], injects["casualty"]["at_ms"]) == ("emergency", alert)
    assert injects["casualty"]["response"] is None  # nobody answered it
    teams = {t["team"]: t for t in figures["teams"]}
    assert {name: t["simulated_units"] for name, t in teams.items()} == {"Cyan": 5, "Red": 5, "Green": 5, "Yellow": 5}
    assert teams["Red"]["emergencies"] == 1
