"""Presence across three real nodes: late joiners, disconnect deletes, a node killed with kill -9."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nats
import nats.js.errors
import pytest

from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.nodes import Cluster, running_cluster, stored_barrier
from tests.support.poll import wait_until_async

TIMEOUT_S = 15.0
# A killed node is noticed one lease TTL (6 s) and two liveness checks (2 s each) after it died.
NODE_DEATH_S = 45.0


@pytest.fixture
def cluster(tmp_path: Path, ca_template: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, ca_template) as running:
        yield running


def _deleted(uid: str) -> object:
    return lambda e: e.type == "t-x-d-d" and e.detail.link_uid == uid


async def _client(cluster: Cluster, node: int, clients: list[object]) -> CotClient:
    client = await CotClient.connect(cluster.port(node))
    clients.append(client)
    return client


async def _reporters(cluster: Cluster, clients: list[object]) -> tuple[CotClient, CotClient]:
    """ALPHA on node A and BRAVO on node B report themselves; ALPHA drops a marker."""
    alpha, bravo = await _client(cluster, 0, clients), await _client(cluster, 1, clients)
    await alpha.send(sa("uid-alpha", "ALPHA"))
    await bravo.send(sa("uid-bravo", "BRAVO"))
    await alpha.send(cot("alpha-marker", "b-m-p-s-m", lat=45.0, lon=7.0))
    return alpha, bravo


async def test_a_late_joiner_gets_the_sa_and_items_of_clients_of_every_node(
    cluster: Cluster, clients: list[object]
) -> None:
    _, bravo = await _reporters(cluster, clients)
    await bravo.send(cot("bravo-marker", "b-m-p-s-m", lat=45.1, lon=7.1))
    witness = await _client(cluster, 2, clients)
    for uid in ("uid-alpha", "uid-bravo", "alpha-marker", "bravo-marker"):
        await witness.wait_uid(uid, TIMEOUT_S)
    # Node C has them all in its picture: a client joining C now is given them on connect.
    late = await _client(cluster, 2, clients)
    for uid in ("uid-alpha", "uid-bravo", "alpha-marker", "bravo-marker"):
        got = await late.wait_uid(uid, TIMEOUT_S)
    assert got.point.lat == 45.1


async def test_a_disconnect_on_one_node_removes_the_client_on_the_others(
    cluster: Cluster, clients: list[object]
) -> None:
    leaver = await _client(cluster, 0, clients)
    b, c = await _client(cluster, 1, clients), await _client(cluster, 2, clients)
    await leaver.send(sa("uid-leaver", "LEAVER"))
    await b.wait_uid("uid-leaver", TIMEOUT_S)
    await c.wait_uid("uid-leaver", TIMEOUT_S)
    await leaver.close()
    await b.wait_for(_deleted("uid-leaver"), TIMEOUT_S)  # type: ignore[arg-type]
    await c.wait_for(_deleted("uid-leaver"), TIMEOUT_S)  # type: ignore[arg-type]
    late = await _client(cluster, 2, clients)
    await stored_barrier(late, b)
    assert not late.has(lambda e: e.uid == "uid-leaver"), "a departed client of another node was replayed"


async def test_the_clients_of_a_killed_node_leave_every_other_picture(
    cluster: Cluster, clients: list[object]
) -> None:
    doomed = await _client(cluster, 0, clients)
    marker_owner = await _client(cluster, 0, clients)
    b, c = await _client(cluster, 1, clients), await _client(cluster, 2, clients)
    await doomed.send(sa("uid-doomed", "DOOMED"))
    await marker_owner.send(cot("kept-marker", "b-m-p-s-m"))
    for observer in (b, c):
        await observer.wait_uid("uid-doomed", TIMEOUT_S)
        await observer.wait_uid("kept-marker", TIMEOUT_S)
    cluster.kill(0)
    await b.wait_for(_deleted("uid-doomed"), NODE_DEATH_S)  # type: ignore[arg-type]
    await c.wait_for(_deleted("uid-doomed"), NODE_DEATH_S)  # type: ignore[arg-type]
    late = await _client(cluster, 1, clients)
    await late.wait_uid("kept-marker", TIMEOUT_S)  # map items outlive their sender's node
    await stored_barrier(late, c)
    assert not late.has(lambda e: e.uid == "uid-doomed"), "a client of the killed node is still pictured"
    assert sum(1 for e in b.events if _deleted("uid-doomed")(e)) == 1, "one disconnect notice per client"  # type: ignore[operator]


async def test_a_client_of_a_killed_node_reconnects_elsewhere_and_gets_the_chat_sent_meanwhile(
    cluster: Cluster, clients: list[object]
) -> None:
    mover = await _client(cluster, 0, clients)
    sender = await _client(cluster, 1, clients)
    await mover.send(sa("uid-mover", "MOVER"))
    await sender.send(sa("uid-sender", "SENDER"))
    await sender.wait_uid("uid-mover", TIMEOUT_S)
    await mover.wait_uid("uid-sender", TIMEOUT_S)
    cluster.kill(0)
    await sender.wait_for(_deleted("uid-mover"), NODE_DEATH_S)  # type: ignore[arg-type]
    message = chat("uid-sender", "SENDER", to_uid="uid-mover", to_cs="MOVER", text="while you were away")
    await sender.send(message)
    back = await _client(cluster, 2, clients)
    await back.send(sa("uid-mover", "MOVER"))
    got = await back.wait_for(lambda e: e.type == "b-t-f", TIMEOUT_S)
    await stored_barrier(back, sender)
    assert sum(1 for e in back.events if e.uid == got.uid) == 1


async def _in_latest(cluster: Cluster, uid: str) -> None:
    """Wait until ``uid`` is in the cluster's latest-state bucket (its node flushes every half second)."""
    nc = await nats.connect(cluster.nats.url)
    try:
        kv = await nc.jetstream().key_value("rp_rallypoint_latest")

        async def present() -> bool:
            try:
                return bool((await kv.get(uid)).value)
            except nats.js.errors.KeyNotFoundError:
                return False

        await wait_until_async(present, f"{uid} in the latest-state bucket", timeout=TIMEOUT_S)
    finally:
        await nc.close()


@pytest.mark.parametrize("how", ["restarted", "joining"])
async def test_a_starting_node_begins_with_the_picture_of_the_others(
    cluster: Cluster, clients: list[object], how: str
) -> None:
    alpha, _ = await _reporters(cluster, clients)
    for uid in ("uid-alpha", "uid-bravo", "alpha-marker"):
        await _in_latest(cluster, uid)
    # Node C restarts, or node D joins: its own store holds none of these (they entered at A and B).
    starting = 2 if how == "restarted" else cluster.add()
    if how == "restarted":
        cluster.restart(starting)
    late = await _client(cluster, starting, clients)
    for uid in ("uid-alpha", "uid-bravo", "alpha-marker"):
        await late.wait_uid(uid, TIMEOUT_S)
    # Its contact index is filled too: a chat by callsign from it reaches ALPHA on node A.
    await late.send(sa("uid-late", "LATE"))
    await late.send(chat("uid-late", "LATE", to_uid="uid-alpha", to_cs="ALPHA", text="back"))
    await alpha.wait_for(lambda e: e.type == "b-t-f", TIMEOUT_S)
    await stored_barrier(late, alpha)
    assert not late.has(lambda e: e.type == "b-t-f-s"), "ALPHA unreachable from the restarted node"


async def test_a_node_killed_and_restarted_at_once_lets_go_of_its_previous_clients(
    cluster: Cluster, clients: list[object]
) -> None:
    doomed, observer = await _client(cluster, 0, clients), await _client(cluster, 1, clients)
    await doomed.send(sa("uid-doomed", "DOOMED"))
    await observer.wait_uid("uid-doomed", TIMEOUT_S)
    await _in_latest(cluster, "uid-doomed")
    cluster.kill(0)
    # Back before its liveness key expired: nobody saw it gone, its restart says its clients left.
    cluster.restart(0)
    await observer.wait_for(_deleted("uid-doomed"), TIMEOUT_S)  # type: ignore[arg-type]
    late = await _client(cluster, 2, clients)
    await stored_barrier(late, observer)
    assert not late.has(lambda e: e.uid == "uid-doomed")
