"""Missions, revocations and accounts changed on one node take effect on the others: real servers
on one NATS server (and one PostgreSQL database where the state itself must be shared)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from rallypoint.model.cot import CotEvent
from tests.support.accounts import PASSWORDS, run_cli
from tests.support.certs import bundle_context, client_bundle, client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.nodes import Cluster, running_cluster
from tests.support.poll import wait_until_async
from tests.support.postgres import PostgresDatabase

API = "/Marti/api/missions"
TIMEOUT_S = 15.0


async def _until(get: Callable[[], Awaitable[httpx.Response]], check: Callable[[httpx.Response], bool],
                 what: str) -> httpx.Response:
    """Ask again until ``check`` holds; the other node applies the change when the bus brings it."""
    async def answered() -> httpx.Response | None:
        resp = await get()
        return resp if check(resp) else None

    return await wait_until_async(answered, what, timeout=TIMEOUT_S)


def _mission_notice(event: CotEvent, kind: str) -> bool:
    return f'type="{kind}"'.encode() in event.detail.xml and b'name="Op"' in event.detail.xml


class Member:
    """A client of one node: its HTTPS Mission API and its TLS CoT stream share one certificate."""

    def __init__(self, uid: str, http: httpx.AsyncClient, stream: CotClient) -> None:
        self.uid = uid
        self.http = http
        self.stream = stream


@pytest.fixture
async def shared_cluster(
    tmp_path: Path, ca_template: Path, postgres_database: PostgresDatabase
) -> AsyncIterator[Cluster]:
    dsn = await postgres_database.fresh()
    groups = {"red1": ["Red"], "red2": ["Red"]}
    with running_cluster(tmp_path, ca_template, size=2, extra=("--storage", dsn), groups=groups) as cluster:
        yield cluster


async def _member(cluster: Cluster, node: int, name: str, out: Path) -> Member:
    ctx = client_context(cluster.dirs[node], name, out)
    stream = await CotClient.connect(cluster.port(node, "tls"), ssl_context=ctx)
    http = httpx.AsyncClient(base_url=f"https://127.0.0.1:{cluster.port(node, 'api')}", verify=ctx, timeout=10)
    member = Member(f"uid-{name}", http, stream)
    await stream.send(sa(member.uid, name.upper()))
    return member


async def test_a_mission_changed_on_one_node_is_seen_and_notified_on_the_other(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    red1 = await _member(shared_cluster, 0, "red1", tmp_path)
    red2 = await _member(shared_cluster, 1, "red2", tmp_path)
    try:
        await red2.stream.wait_uid(red1.uid, TIMEOUT_S)
        await red1.stream.wait_uid(red2.uid, TIMEOUT_S)

        created = await red1.http.put(f"{API}/Op", params={"creatorUid": red1.uid})
        assert created.status_code == 201, created.text
        # Node B, which loaded its missions at start, knows the mission created on node A.
        await _until(lambda: red2.http.get(f"{API}/Op"), lambda r: r.status_code == 200, "mission on node B")

        subscribed = await red2.http.put(f"{API}/Op/subscription", params={"uid": red2.uid})
        assert subscribed.status_code == 201, subscribed.text
        # Node A learns of the subscription made on node B...
        await _until(lambda: red1.http.get(f"{API}/Op/subscriptions"),
                     lambda r: r.status_code == 200 and red2.uid in r.text, "subscription on node A")

        # ...so a change made on node A is told to the subscriber connected to node B,
        added = await red1.http.put(f"{API}/Op/contents", params={"creatorUid": red1.uid},
                                    json={"uids": [red1.uid]})
        assert added.status_code == 200, added.text
        change = await red2.stream.wait_for(lambda e: e.type == "t-x-m-c" and _mission_notice(e, "CHANGE"),
                                            TIMEOUT_S)
        assert red1.uid.encode() in change.detail.xml
        # and CoT addressed to the mission on node A reaches it there.
        await red1.stream.send(cot("op-marker", "a-h-G", detail='<marti><dest mission="Op"/></marti>'))
        await red2.stream.wait_uid("op-marker", TIMEOUT_S)

        deleted = await red1.http.delete(f"{API}/Op", params={"creatorUid": red1.uid})
        assert deleted.status_code == 200, deleted.text
        await red2.stream.wait_for(lambda e: e.type == "t-x-m-d" and b'name="Op"' in e.detail.xml, TIMEOUT_S)
        await _until(lambda: red2.http.get(f"{API}/Op"), lambda r: r.status_code == 404, "mission gone on node B")
    finally:
        for member in (red1, red2):
            await member.http.aclose()
            await member.stream.close()


async def test_a_certificate_revoked_on_one_node_is_enforced_and_kept_by_the_other(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    with running_cluster(tmp_path, ca_template, size=2) as cluster:
        mallory = client_bundle(cluster.dirs[0], "mallory", tmp_path / "certs")
        alice = client_bundle(cluster.dirs[0], "alice", tmp_path / "certs")
        on_b = await CotClient.connect(cluster.port(1, "tls"), ssl_context=bundle_context(mallory))
        watcher = await CotClient.connect(cluster.port(1, "tls"), ssl_context=bundle_context(alice))
        clients.extend([on_b, watcher])
        await on_b.send(sa("uid-mallory", "MALLORY"))
        await watcher.wait_uid("uid-mallory", TIMEOUT_S)

        # Revoked in node A's data directory only: node B closes the session it holds...
        await asyncio.to_thread(run_cli, cluster.dirs[0], "cert", "revoke", "mallory")
        await asyncio.wait_for(on_b.closed.wait(), timeout=TIMEOUT_S)
        # ...and keeps the revocation in its own list, so it still holds after a restart of node B.
        kept = json.loads((cluster.dirs[1] / "ca" / "revoked.json").read_text())
        assert [int(r["serial"], 16) for r in kept] == [mallory.serial]
        cluster.restart(1)
        again = await CotClient.connect(cluster.port(1, "tls"), ssl_context=bundle_context(mallory),
                                        wait_registered=False)
        clients.append(again)
        await asyncio.wait_for(again.closed.wait(), timeout=TIMEOUT_S)
        assert not again.events


async def test_an_account_changed_through_one_node_applies_to_sessions_of_the_other(
    tmp_path: Path, ca_template: Path, postgres_database: PostgresDatabase, clients: list[object]
) -> None:
    dsn = await postgres_database.fresh()
    with running_cluster(tmp_path, ca_template, size=2, extra=("--storage", dsn)) as cluster:
        for name, group, *role in (("alice", "A"), ("bob", "A"), ("root", "Ops", "--role", "admin")):
            await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "rallypoint.cli.main", "user", "add", name, "--group", group, *role,
                 "--password-stdin", "--data-dir", str(cluster.dirs[0])],
                input=PASSWORDS[name] + "\n", capture_output=True, text=True, check=True,
                env={**os.environ, "RALLYPOINT_STORAGE": dsn},
            )
        alice = await CotClient.connect(cluster.port(1, "tls"),
                                        ssl_context=client_context(cluster.dirs[1], "alice", tmp_path))
        bob = await CotClient.connect(cluster.port(1, "tls"),
                                      ssl_context=client_context(cluster.dirs[1], "bob", tmp_path))
        clients.extend([alice, bob])
        await alice.send(sa("uid-alice", "ALICE"))
        await bob.wait_uid("uid-alice", TIMEOUT_S)

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster.port(0, 'http')}", timeout=10) as http:
            login = await http.post("/oauth/token", data={"grant_type": "password", "username": "root",
                                                          "password": PASSWORDS["root"]})
            assert login.status_code == 200, login.text
            root = {"Authorization": f"Bearer {login.json()['access_token']}"}
            disabled = await http.patch("/api/admin/users/alice", json={"disabled": True}, headers=root)
            assert disabled.status_code == 200, disabled.text
        # Node B closes alice's session: the account is disabled for the whole cluster.
        await asyncio.wait_for(alice.closed.wait(), timeout=TIMEOUT_S)
        await bob.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == "uid-alice", TIMEOUT_S)
