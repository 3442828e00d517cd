"""The exercise control API against a real server: registration, control audited, the runner's command feed.

Accounts: alice (A) registers and controls; carol (A) sees the exercise but is not its controller;
bob (B) does not see it; root (admin, Ops) may control any exercise.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rallypoint.client.http import ApiError, RallypointClient
from rallypoint.security.audit import AuditEntry
from tests.support.accounts import PASSWORDS, audit_entries, create_users, run_cli
from tests.support.poll import wait_until_sync
from tests.support.server import ServerProcess

SHA = hashlib.sha256(b"scenario").hexdigest()
CAROL = "carol passphrase 4444"
PASSWORD = {**PASSWORDS, "carol": CAROL}


@pytest.fixture
def exercise_server(data_dir: Path) -> Iterator[ServerProcess]:
    create_users(data_dir)
    run_cli(data_dir, "user", "add", "carol", "--group", "A", "--password-stdin", stdin=CAROL + "\n")
    with ServerProcess(data_dir) as proc:
        yield proc


def _client(server: ServerProcess, name: str) -> RallypointClient:
    return RallypointClient(f"http://127.0.0.1:{server.ports['http']}", username=name, password=PASSWORD[name],
                            timeout=40)


def _refused(call: Any, status: int, words: str = "") -> None:
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status == status, caught.value
    assert words in caught.value.detail, caught.value.detail


def _register(client: RallypointClient, exercise_id: str = "drill-1", **kw: Any) -> Any:
    return client.register_exercise(
        exercise_id, name=kw.pop("name", "Valley drill"), scenario_sha256=kw.pop("sha", SHA),
        units=kw.pop("units", 20), injects=kw.pop("injects", ["cas", "link-20"]), speed=kw.pop("speed", 10.0),
        missions=kw.pop("missions", ()),
    )


def test_register_control_audit_and_command_feed(exercise_server: ServerProcess, data_dir: Path) -> None:
    alice, carol, bob, root = (_client(exercise_server, n) for n in ("alice", "carol", "bob", "root"))
    created = _register(alice)
    assert created["id"] == "drill-1" and created["state"] == "ready" and created["controller"] == "alice"
    assert created["units"] == 20 and created["injects"] == ["cas", "link-20"] and created["speed"] == 10.0
    assert created["sent"] == 0 and created["injects_done"] == 0 and created["started_at"] is None
    # The runner restarting registers again: the same exercise comes back, not a second one.
    assert _register(alice) == created
    assert [e["id"] for e in alice.exercises()] == ["drill-1"]
    _refused(lambda: _register(carol), 409, "already registered")
    _refused(lambda: _register(alice, sha="b" * 64), 409)
    for bad, words in (({"exercise_id": "any"}, "not 'any'"), ({"exercise_id": "a b"}, "letters"),
                       ({"sha": "XYZ"}, "scenario_sha256"), ({"speed": 11.0}, "speed"),
                       ({"injects": ["x", "x"]}, "distinct"), ({"units": 10**7}, "units")):
        exercise_id = bad.pop("exercise_id", "drill-bad")
        _refused(lambda: _register(alice, exercise_id, **bad), 422, words)  # noqa: B023

    # Who sees it: its controller's group and admins.
    assert [e["id"] for e in carol.exercises()] == ["drill-1"]
    assert [e["id"] for e in root.exercises()] == ["drill-1"]
    assert bob.exercises() == []
    _refused(lambda: bob.exercise("drill-1"), 404)
    _refused(lambda: bob.control_exercise("drill-1", "start"), 404)
    # Seeing is not controlling.
    _refused(lambda: carol.control_exercise("drill-1", "start"), 403, "controller")
    _refused(lambda: carol.exercise_progress("drill-1", state="running", clock_s=1, speed=1, sent=1,
                                             injects_done=0), 403)
    _refused(lambda: carol.exercise_commands("drill-1"), 403)

    # Control actions in order; refused ones say why and queue nothing.
    assert alice.control_exercise("drill-1", "start") == {"seq": 1}
    assert alice.exercise("drill-1")["state"] == "running"
    _refused(lambda: alice.control_exercise("drill-1", "resume"), 422, "running")
    _refused(lambda: alice.control_exercise("drill-1", "inject", inject="nope"), 422, "inject")
    _refused(lambda: alice.control_exercise("drill-1", "speed", speed=0.5), 422, "speed")
    _refused(lambda: alice.control_exercise("drill-1", "launch"), 422, "action")
    assert alice.control_exercise("drill-1", "inject", inject="cas") == {"seq": 2}
    assert alice.control_exercise("drill-1", "speed", speed=4) == {"seq": 3}
    assert root.control_exercise("drill-1", "pause") == {"seq": 4}  # an admin controls any exercise
    assert alice.exercise("drill-1")["speed"] == 4.0

    feed = alice.exercise_commands("drill-1", after=0)
    assert [(c["seq"], c["action"], c.get("inject"), c.get("speed"), c["by"]) for c in feed] == [
        (1, "start", None, None, "alice"), (2, "inject", "cas", None, "alice"), (3, "speed", None, 4.0, "alice"),
        (4, "pause", None, None, "root")]
    assert alice.exercise_commands("drill-1", after=2) == feed[2:]
    assert alice.exercise_commands("drill-1", after=4) == []  # no wait: answers at once

    # A runner waiting for commands gets the next one as soon as it is given (long poll).
    got: list[Any] = []
    waiting = threading.Thread(target=lambda: got.append(alice.exercise_commands("drill-1", after=4, wait=20)))
    waiting.start()
    while waiting.is_alive() and not got:
        assert alice.control_exercise("drill-1", "resume")["seq"] == 5
        break
    waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert [(c["seq"], c["action"]) for c in got[0]] == [(5, "resume")]

    # Progress from the runner, then the end.
    progressed = alice.exercise_progress("drill-1", state="running", clock_s=125.5, speed=4, sent=2_400,
                                         injects_done=1)
    assert (progressed["clock_s"], progressed["sent"], progressed["injects_done"]) == (125.5, 2400, 1)
    assert progressed["started_at"] is not None
    _refused(lambda: alice.exercise_progress("drill-1", state="flying", clock_s=1, speed=1, sent=0,
                                             injects_done=0), 422, "state")
    _refused(lambda: alice.exercise_progress("drill-1", state="running", clock_s=1, speed=1, sent=-1,
                                             injects_done=0), 422, "sent")
    assert alice.control_exercise("drill-1", "stop")["seq"] == 6
    _refused(lambda: alice.control_exercise("drill-1", "start"), 422, "stopped")
    assert alice.exercise("drill-1")["state"] == "stopped"

    # Every registration and control action is in the audit log, by whom and with what.
    wanted = [("alice", "exercise.register"), ("alice", "exercise.start"), ("alice", "exercise.inject"),
              ("alice", "exercise.speed"), ("root", "exercise.pause"), ("alice", "exercise.resume"),
              ("alice", "exercise.stop")]
    # The audit log is written in batches: poll it until every entry is there.
    def written() -> list[AuditEntry] | None:
        found = [e for e in audit_entries(data_dir) if e.action.startswith("exercise.")]
        return found if len(found) >= len(wanted) else None

    entries = wait_until_sync(written, "the exercise audit entries", timeout=15, interval=0.1)
    assert [(e.actor, e.action) for e in entries] == wanted
    assert all(e.target == "drill-1" for e in entries)
    inject = next(e for e in entries if e.action == "exercise.inject")
    assert inject.detail == {"seq": "2", "inject": "cas"}


@pytest.mark.timeout(300)  # each CLI run starts a Python process
def test_cli_control_commands(exercise_server: ServerProcess) -> None:
    alice = _client(exercise_server, "alice")
    _register(alice, "cli-drill")
    base = f"http://127.0.0.1:{exercise_server.ports['http']}"

    def cli(*args: str, user: str = "alice", check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "RALLYPOINT_URL": base, "RALLYPOINT_USER": user, "RALLYPOINT_PASSWORD": PASSWORD[user],
               "COLUMNS": "200"}
        return subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "exercise", *args], env=env,
                              capture_output=True, text=True, check=check, timeout=60)

    assert "cli-drill" in cli("list").stdout
    assert cli("start", "cli-drill").stdout.strip() == "start queued for cli-drill as command 1"
    assert cli("inject", "cli-drill", "cas", "--json").stdout.strip() == '{"seq": 2}'
    alice.control_exercise("cli-drill", "speed", speed=2.5)
    status = cli("status", "cli-drill").stdout
    assert "cli-drill" in status and "running" in status and "2.5x" in status and "injects 0/2" in status
    denied = cli("pause", "cli-drill", user="carol", check=False)
    assert denied.returncode == 1 and "403" in denied.stderr
    bad = cli("speed", "cli-drill", "11", check=False)
    assert bad.returncode == 2 and "1 to 10" in bad.stderr
    assert [c["action"] for c in alice.exercise_commands("cli-drill")] == ["start", "inject", "speed"]
