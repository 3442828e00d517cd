"""Designations on the real server: the two-person rule, visibility on every path, the audit trail.

Accounts: alice (A, member) proposes; carol (A and B, approver) decides; dave (A, approver) is a
second approver; bob (B, member) is outside the proposer's groups; root (A, admin) is an admin who
sees everything the proposer's group sees but may not approve.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import audit_entries, run_cli
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot
from tests.support.live import LiveClient
from tests.support.metrics import metric_value
from tests.support.poll import wait_until, wait_until_sync
from tests.support.server import ServerProcess

PASSWORDS = {"alice": "alice passphrase 1", "bob": "bob passphrase 22", "carol": "carol passphrase 333",
             "dave": "dave passphrase 4444", "root": "root passphrase 55555"}
ACCOUNTS = {"alice": (["A"], "member"), "bob": (["B"], "member"), "carol": (["A", "B"], "approver"),
            "dave": (["A"], "approver"), "root": (["A"], "admin")}
POINT = {"title": "Casualty by the ford", "category": "casualty", "affiliation": "friend", "priority": 1,
         "notes": "two walking wounded", "point": {"lat": 39.1, "lon": -120.03}}


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    for name, (groups, role) in ACCOUNTS.items():
        args = [a for g in groups for a in ("--group", g)]
        run_cli(data_dir, "user", "add", name, *args, "--role", role, "--password-stdin", stdin=PASSWORDS[name] + "\n")
    with ServerProcess(data_dir) as proc:
        yield proc


class Api:
    """One logged-in user of the native API."""

    def __init__(self, server: ServerProcess, name: str) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=30)
        answer = self.http.post("/api/auth/token", auth=(name, PASSWORDS[name]))
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def propose(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.http.post("/api/designations", json=body or POINT)
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]


def users(server: ServerProcess) -> dict[str, Api]:
    return {name: Api(server, name) for name in PASSWORDS}


def test_two_person_rule_and_the_audit_trail(server: ServerProcess) -> None:
    u = users(server)
    d = u["alice"].propose()
    assert d["state"] == "proposed" and d["proposer"] == "alice" and d["proposer_groups"] == ["A"]
    path = f"/api/designations/{d['id']}"
    # A member, an admin and the proposer herself may not approve; outside the groups it does not exist.
    refused = u["alice"].http.post(f"{path}/approve")
    assert refused.status_code == 403 and "approver" in refused.json()["detail"]
    refused = u["root"].http.post(f"{path}/approve", json={})
    assert refused.status_code == 403 and "admin is no exception" in refused.json()["detail"]
    assert u["bob"].http.post(f"{path}/approve").status_code == 404
    own = u["carol"].propose({**POINT, "title": "Carol's own"})
    self_approval = u["carol"].http.post(f"/api/designations/{own['id']}/approve")
    assert self_approval.status_code == 403 and "two-person rule" in self_approval.json()["detail"]
    assert u["carol"].http.post(f"/api/designations/{own['id']}/reject", json={"reason": "mine"}).status_code == 403
    # The approver may share only with groups she writes.
    assert u["dave"].http.post(f"{path}/approve", json={"groups": ["B"]}).status_code == 403
    approved = u["carol"].http.post(f"{path}/approve", json={"groups": ["B"]})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved" and approved.json()["approver"] == "carol"
    assert approved.json()["shared_groups"] == ["B"]
    twice = u["dave"].http.post(f"{path}/approve")
    assert twice.status_code == 409 and "already approved" in twice.json()["detail"]
    assert u["carol"].http.post(f"{path}/approve").status_code == 409
    assert u["alice"].http.delete(path).status_code == 409
    # Rejection needs a reason; withdrawal is the proposer's.
    r = u["alice"].propose({**POINT, "title": "Wrong ford"})
    rpath = f"/api/designations/{r['id']}"
    assert u["dave"].http.post(f"{rpath}/reject").status_code == 400
    rejected = u["dave"].http.post(f"{rpath}/reject", json={"reason": "the ford is upstream"})
    assert rejected.status_code == 200 and rejected.json()["reason"] == "the ford is upstream"
    assert u["carol"].http.post(f"{rpath}/approve").status_code == 409
    w = u["alice"].propose({**POINT, "title": "Maybe"})
    wpath = f"/api/designations/{w['id']}"
    assert u["dave"].http.delete(wpath).status_code == 403
    assert u["bob"].http.delete(wpath).status_code == 404
    assert u["alice"].http.delete(wpath).json()["state"] == "withdrawn"
    assert u["alice"].http.delete(wpath).status_code == 409
    assert metric_value(server, "rallypoint_designations_refused_total") >= 6

    server.stop()
    entries = [e for e in audit_entries(server.data_dir) if e.action.startswith("designation.")]
    by = {(e.action, e.target): e for e in entries}
    assert by[("designation.propose", d["id"])].actor == "alice"
    approval = by[("designation.approve", d["id"])]
    assert approval.actor == "carol" and approval.detail["proposer"] == "alice"
    assert approval.detail["approver"] == "carol" and approval.detail["groups"] == "B"
    rejection = by[("designation.reject", r["id"])]
    assert rejection.detail == {"proposer": "alice", "approver": "dave", "reason": "the ford is upstream"}
    assert by[("designation.withdraw", w["id"])].detail == {"proposer": "alice"}
    refusals = [e for e in entries if e.action == "designation.refused"]
    assert {(e.actor, e.detail["reason"]) for e in refusals} >= {
        ("alice", "role member"), ("root", "role admin"), ("carol", "own proposal"),
        ("dave", "groups outside the approver's"),
    }
    verify = subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "audit", "verify",
                             "--data-dir", str(server.data_dir)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def listed(api: Api, state: str | None = None) -> list[str]:
    answer = api.http.get("/api/designations", params={"state": state} if state else None)
    assert answer.status_code == 200, answer.text
    return [d["id"] for d in answer.json()]


async def test_unapproved_is_invisible_outside_the_proposers_groups_on_every_path(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    u = users(server)
    tls = server.ports["tls"]
    alice_tak = await CotClient.connect(tls, ssl_context=client_context(server, "alice", tmp_path / "a"))
    bob_tak = await CotClient.connect(tls, ssl_context=client_context(server, "bob", tmp_path / "b"))
    bob_peer = await CotClient.connect(tls, ssl_context=client_context(server, "bob", tmp_path / "b2"))
    alice_peer = await CotClient.connect(tls, ssl_context=client_context(server, "alice", tmp_path / "a2"))
    alice_live = await LiveClient.connect(server.ports["http"], token=u["alice"].token)
    bob_live = await LiveClient.connect(server.ports["http"], token=u["bob"].token)
    clients.extend([alice_tak, alice_peer, bob_tak, bob_peer, alice_live, bob_live])

    area = {"title": "Rockfall", "category": "hazard", "affiliation": "unknown",
            "polygon": [{"lat": 39.0, "lon": -120.0}, {"lat": 39.0, "lon": -119.99}, {"lat": 39.01, "lon": -119.99}]}
    d = u["alice"].propose(area)
    proposed = f"designation.{d['id']}.proposed"
    shown = await alice_tak.wait_uid(proposed)
    assert shown.type == "u-d-f" and shown.detail.callsign == "Rockfall".join(("UNAPPROVED: ", ""))
    raw = next(r for r in alice_tak.raw if proposed.encode() in r)
    assert b'<__rallypoint_designation id="' in raw and b'state="proposed"' in raw and b"[UNAPPROVED" in raw
    await alice_live.wait_uid(proposed)

    def unseen_by_bob() -> None:
        assert not bob_tak.has(lambda e: e.uid.startswith(f"designation.{d['id']}"))
        assert not any(k.startswith(f"designation.{d['id']}") for k in bob_live.features)
        assert d["id"] not in listed(u["bob"]) and d["id"] not in listed(u["bob"], "proposed")
        assert u["bob"].http.get(f"/api/designations/{d['id']}").status_code == 404
        assert u["bob"].http.get(f"/Marti/api/cot/xml/{proposed}").status_code == 404
        history = u["bob"].http.get("/api/history", params={"uid": proposed})
        assert history.status_code == 200 and not history.json()["events"], history.text

    # Stream: what bob's peer sends after the proposal reaches bob, the proposal never does.
    await bob_tak.barrier(bob_peer)
    unseen_by_bob()
    assert d["id"] in listed(u["dave"]) and d["id"] in listed(u["alice"], "proposed")
    assert u["dave"].http.get(f"/Marti/api/cot/xml/{proposed}").status_code == 200

    # Approved and shared with B: bob now sees the approved designation; A loses the unapproved marker.
    assert u["carol"].http.post(f"/api/designations/{d['id']}/approve", json={"groups": ["B"]}).status_code == 200
    final = f"designation.{d['id']}"
    got = await bob_tak.wait_uid(final)
    assert got.type == "u-d-f" and got.detail.callsign == "Rockfall"
    await alice_tak.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == proposed)
    await wait_until(lambda: final in bob_live.features, "approved designation on bob's live feed")
    await wait_until(lambda: proposed not in alice_live.features, "unapproved marker gone from alice's feed")
    assert d["id"] in listed(u["bob"], "approved")
    assert u["bob"].http.get(f"/Marti/api/cot/xml/{final}").status_code == 200
    assert not bob_tak.has(lambda e: e.uid == proposed)
    # Shared with B only: alice's group keeps the record (API) but gets no approved marker on its maps.
    await alice_tak.barrier(alice_peer)
    assert not alice_tak.has(lambda e: e.uid == final)


async def test_rejection_and_withdrawal_delete_the_unapproved_marker(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    u = users(server)
    alice_tak = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "alice", tmp_path))
    clients.append(alice_tak)
    r = u["alice"].propose({**POINT, "affiliation": "hostile", "category": "vessel"})
    first = await alice_tak.wait_uid(f"designation.{r['id']}.proposed")
    assert first.type == "a-h-S"
    assert u["dave"].http.post(f"/api/designations/{r['id']}/reject", json={"reason": "duplicate"}).status_code == 200
    await alice_tak.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == f"designation.{r['id']}.proposed")
    w = u["alice"].propose()
    await alice_tak.wait_uid(f"designation.{w['id']}.proposed")
    assert u["alice"].http.delete(f"/api/designations/{w['id']}").status_code == 200
    await alice_tak.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == f"designation.{w['id']}.proposed")
    # Late joiners of the proposer's group get neither marker from the picture.
    late = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "alice", tmp_path / "l"))
    clients.append(late)
    await late.send(cot("late-marker", "b-m-p-s-m"))
    await late.barrier(alice_tak)
    assert not late.has(lambda e: e.uid.startswith("designation."))
    # Gone from the live picture too (the history keeps what was sent, for the proposer's groups only).
    tracks = u["alice"].http.get("/api/tracks")
    assert tracks.status_code == 200 and not [t for t in tracks.json() if t["uid"].startswith("designation.")]


def test_hostile_proposals_get_a_clear_400(server: ServerProcess) -> None:
    api = Api(server, "alice")
    bow_tie = [{"lat": 0.0, "lon": 0.0}, {"lat": 1.0, "lon": 1.0}, {"lat": 0.0, "lon": 1.0}, {"lat": 1.0, "lon": 0.0}]
    cases: list[tuple[str, Any, str]] = [
        ("no geometry", {k: v for k, v in POINT.items() if k != "point"}, "point or polygon"),
        ("both geometries", {**POINT, "polygon": bow_tie}, "point or polygon"),
        ("latitude 200", {**POINT, "point": {"lat": 200, "lon": 0}}, "point.lat"),
        ("negative altitude", {**POINT, "hae": -1e7}, "hae"),
        ("self-crossing polygon", {**{k: v for k, v in POINT.items() if k != "point"}, "polygon": bow_tie}, "cross"),
        ("two vertices", {**{k: v for k, v in POINT.items() if k != "point"}, "polygon": bow_tie[:2]}, "3"),
        ("unknown category", {**POINT, "category": "strike"}, "category"),
        ("priority 10^9", {**POINT, "priority": 10**9}, "priority"),
        ("control characters", {**POINT, "title": "bell\x07"}, "title"),
        ("unknown attachment", {**POINT, "attachments": ["ab" * 32]}, "attachment"),
        ("unknown mission", {**POINT, "mission": "nowhere"}, "mission"),
        ("unknown field", {**POINT, "fire": True}, "fire"),
        ("100,000 vertices", {**{k: v for k, v in POINT.items() if k != "point"},
                              "polygon": [{"lat": i * 1e-6, "lon": 0} for i in range(100_000)]}, ""),
    ]
    for name, body, words in cases:
        answer = api.http.post("/api/designations", json=body)
        if name == "100,000 vertices":
            assert answer.status_code == 413, (name, answer.text)
            continue
        assert answer.status_code == 400, (name, answer.text)
        assert words in answer.json()["detail"], (name, answer.json())
    nan = api.http.post("/api/designations", content=b'{"title":"x","category":"hazard","point":{"lat":NaN,"lon":0}}',
                        headers={"content-type": "application/json"})
    assert nan.status_code == 400
    assert api.http.get("/api/designations", params={"state": "pending"}).status_code == 400
    assert api.http.get("/api/designations/not-an-id").status_code == 404
    assert listed(api) == []
    assert metric_value(server, "rallypoint_designations_invalid_total") >= 5
    assert not [line for line in server.lines if line.get("level") in ("error", "critical")]


def test_cli_python_client_and_mission_link(server: ServerProcess) -> None:
    from rallypoint.client.http import ApiError, RallypointClient

    base = f"http://127.0.0.1:{server.ports['http']}"
    carol = RallypointClient(base, username="carol", password=PASSWORDS["carol"])
    bob = RallypointClient(base, username="bob", password=PASSWORDS["bob"])
    created = carol.create_mission("sweep", groups=["A", "B"])
    assert created["name"] == "sweep"
    alice = RallypointClient(base, username="alice", password=PASSWORDS["alice"])

    def cli(*args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
        env = {"RALLYPOINT_URL": base, "RALLYPOINT_USER": user, "RALLYPOINT_PASSWORD": PASSWORDS[user],
               "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "designation", *args],
                              capture_output=True, text=True, env=env)

    # Linking needs write permission in the mission: a read-only reader is refused, a subscriber is not.
    unwritable = cli("propose", "Landing site north", "--category", "landing_site", "--point", "39.2,-120.1",
                     "--mission", "sweep")
    assert unwritable.returncode == 1 and "400" in unwritable.stderr and "write" in unwritable.stderr
    alice.subscribe_mission("sweep")
    proposed = cli("propose", "Landing site north", "--category", "landing_site", "--affiliation", "friend",
                   "--point", "39.2,-120.1", "--mission", "sweep", "--json")
    assert proposed.returncode == 0, proposed.stderr
    d = json.loads(proposed.stdout)
    assert d["mission"] == "sweep" and d["state"] == "proposed"
    listing = cli("list", "--state", "proposed")
    assert listing.returncode == 0 and d["id"] in listing.stdout
    # A proposal is never in the mission, whoever reads it.
    assert f"designation.{d['id']}.proposed" not in bob.mission("sweep")["uids"]
    assert all(x["id"] != d["id"] for x in bob.designations())
    refused = cli("approve", d["id"])
    assert refused.returncode == 1 and "403" in refused.stderr and "approver" in refused.stderr
    bad = cli("propose", "x", "--category", "hazard", "--point", "91,0")
    assert bad.returncode == 2 and "latitude" in bad.stderr
    with pytest.raises(ApiError) as caught:
        bob.approve_designation(d["id"])
    assert caught.value.status == 404
    approved = carol.approve_designation(d["id"])
    assert approved["state"] == "approved" and approved["shared_groups"] == ["A"]
    with pytest.raises(ApiError) as caught:
        carol.approve_designation(d["id"])
    assert caught.value.status == 409
    # Approved and linked: the mission holds it, so its readers (bob reads B, one of its groups) see the uid.
    wait_until_sync(lambda: f"designation.{d['id']}" in bob.mission("sweep")["uids"], "approved one in the mission")
    shown = cli("show", d["id"], "--json")
    assert json.loads(shown.stdout)["approver"] == "carol"
    r = carol.propose_designation("Fog bank", "watch", polygon=[(39.0, -120.0), (39.0, -119.9), (39.1, -119.9)])
    assert cli("withdraw", r["id"], user="alice").returncode == 1
    assert carol.withdraw_designation(r["id"])["state"] == "withdrawn"
    for client in (alice, bob, carol):
        client.close()
