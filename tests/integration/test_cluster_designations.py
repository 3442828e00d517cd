"""Designations on two real nodes sharing one PostgreSQL database and one NATS server.

The state lives in the shared store and the CoT crosses the bus: a proposal made on one node shows
(unapproved) to the proposer's group on the other node and never outside it; a decision taken on
one node is a 409 on the other; two approvers racing on two nodes give exactly one approval.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.certs import client_context
from tests.support.cot_client import CotClient
from tests.support.nodes import Cluster, running_cluster
from tests.support.postgres import PostgresDatabase

PASSWORDS = {"alice": "alice passphrase 1", "bob": "bob passphrase 22", "carol": "carol passphrase 333",
             "dave": "dave passphrase 4444"}
ACCOUNTS = {"alice": (["A"], "member"), "bob": (["B"], "member"), "carol": (["A", "B"], "approver"),
            "dave": (["A"], "approver")}
POINT = {"title": "Casualty by the ford", "category": "casualty", "point": {"lat": 39.1, "lon": -120.03}}


@pytest.fixture
async def shared(tmp_path: Path, ca_template: Path, postgres_database: PostgresDatabase) -> AsyncIterator[Cluster]:
    dsn = await postgres_database.fresh()
    env = {**os.environ, "RALLYPOINT_STORAGE": dsn}
    for name, (groups, role) in ACCOUNTS.items():
        args = [a for g in groups for a in ("--group", g)]
        subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "user", "add", name, *args, "--role", role,
                        "--password-stdin", "--data-dir", str(tmp_path / "accounts")],
                       input=PASSWORDS[name] + "\n", capture_output=True, text=True, check=True, env=env)
    with running_cluster(tmp_path, ca_template, size=2, extra=("--storage", dsn)) as cluster:
        yield cluster


async def api(cluster: Cluster, node: int, name: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.port(node, 'http')}", timeout=15)
    token = (await http.post("/api/auth/token", auth=(name, PASSWORDS[name]))).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    return http


async def test_two_nodes_agree_on_designations(shared: Cluster, tmp_path: Path, clients: list[object]) -> None:
    alice_a, carol_b, dave_a, carol_a, dave_b, bob_b = [
        await api(shared, node, name)
        for node, name in ((0, "alice"), (1, "carol"), (0, "dave"), (0, "carol"), (1, "dave"), (1, "bob"))]
    alice_tak_b = await CotClient.connect(shared.port(1, "tls"),
                                          ssl_context=client_context(shared.dirs[1], "alice", tmp_path / "ab"))
    bob_tak_b = await CotClient.connect(shared.port(1, "tls"),
                                        ssl_context=client_context(shared.dirs[1], "bob", tmp_path / "bb"))
    clients.extend([alice_tak_b, bob_tak_b])
    try:
        answer = await alice_a.post("/api/designations", json=POINT)
        assert answer.status_code == 201, answer.text
        d: dict[str, Any] = answer.json()
        # Proposed on node A, shown unapproved to the proposer's group on node B.
        shown = await alice_tak_b.wait_uid(f"designation.{d['id']}.proposed", timeout=15)
        assert shown.detail.callsign == "UNAPPROVED: Casualty by the ford"
        assert (await bob_b.get(f"/api/designations/{d['id']}")).status_code == 404

        approved = await carol_b.post(f"/api/designations/{d['id']}/approve", json={"groups": ["A", "B"]})
        assert approved.status_code == 200, approved.text
        assert (await dave_a.post(f"/api/designations/{d['id']}/approve")).status_code == 409
        await bob_tak_b.wait_uid(f"designation.{d['id']}", timeout=15)
        assert not bob_tak_b.has(lambda e: e.uid == f"designation.{d['id']}.proposed")
        assert (await bob_b.get(f"/api/designations/{d['id']}")).json()["state"] == "approved"

        # Two approvers, two nodes, at once: one approval, one conflict.
        for _ in range(3):
            race = (await alice_a.post("/api/designations", json=POINT)).json()
            path = f"/api/designations/{race['id']}/approve"
            answers = await asyncio.gather(carol_a.post(path), dave_b.post(path))
            assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    finally:
        for http in (alice_a, carol_b, dave_a, carol_a, dave_b, bob_b):
            await http.aclose()
