"""Two nodes on one PostgreSQL database lose its connections mid-traffic: every event is stored once.

Every backend is terminated (``pg_terminate_backend``, what a restart or failover does to the
connections) right after each burst of chat and markers is sent, while the nodes' writers are
writing it or about to: a write on a killed connection is retried, a pool that saw its connections
die opens new ones. History through either node's API then holds every event sent, once (each
node stores what entered through it, and both read the one database).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx

from tests.support.cot_client import CotClient, chat, cot, sa, uid_of
from tests.support.metrics import metric_value
from tests.support.nodes import running_cluster, stored_barrier
from tests.support.poll import wait_until
from tests.support.postgres import PostgresDatabase

TIMEOUT_S = 30.0
ROUNDS = 5
PER_ROUND = 20


def _history(port: int) -> Counter[str]:
    page = httpx.get(f"http://127.0.0.1:{port}/api/history", params={"limit": 5000}, timeout=10).json()
    assert not page["truncated"]
    return Counter(event["uid"] for event in page["events"])


async def test_terminated_backends_under_two_nodes_lose_and_double_no_stored_event(
    tmp_path: Path, ca_template: Path, postgres_database: PostgresDatabase, clients: list[object]
) -> None:
    dsn = await postgres_database.fresh()
    with running_cluster(tmp_path, ca_template, size=2, extra=("--storage", dsn)) as cluster:
        alpha, bravo = await CotClient.connect(cluster.port(0)), await CotClient.connect(cluster.port(1))
        clients.extend([alpha, bravo])
        await alpha.send(sa("uid-alpha", "ALPHA"))
        await bravo.send(sa("uid-bravo", "BRAVO"))
        await alpha.wait_uid("uid-bravo", TIMEOUT_S)
        await bravo.wait_uid("uid-alpha", TIMEOUT_S)
        sent: list[str] = []
        killed = 0
        for n in range(ROUNDS):
            for sender, uid, callsign in ((alpha, "uid-alpha", "ALPHA"), (bravo, "uid-bravo", "BRAVO")):
                for i in range(PER_ROUND):
                    message = (chat(uid, callsign, to_uid=None, to_cs=None, text=f"{n}.{i}") if i % 2
                               else cot(f"marker-{callsign}-{n}-{i}", "b-m-p-s-m", lat=n + i / 100))
                    sent.append(uid_of(message))
                    await sender.send(message)
            # Mid-write: the burst is still on its way to the database.
            killed += await postgres_database.terminate_backends()
            await stored_barrier(alpha, bravo)
            await stored_barrier(bravo, alpha)
        assert killed > 0

        expected = Counter(sent)
        for node in cluster.nodes:
            def complete(port: int = node.ports["http"]) -> bool:
                return set(expected) <= set(_history(port))

            await wait_until(complete, "every event sent in the history", TIMEOUT_S)
            stored = _history(node.ports["http"])
            assert {u: stored[u] for u in expected if stored[u] != 1} == {}, "an event lost or stored twice"
            assert metric_value(node, "rallypoint_storage_dropped_total") == 0.0
